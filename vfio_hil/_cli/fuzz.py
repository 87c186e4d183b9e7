"""``vfio-hil fuzz``: hypothesis drives a device and the model in lockstep.

    vfio-hil fuzz (--device ADDR | --sim PRESET[:VECTORS][@KERNEL] | --lab KERNEL
                   | --devices-from-env) [--profile ci|dev|fuzz] [--max-examples N]
                  [--seed N] [--out DIR] [--timeout S] [--in-guest] [--iommu MODE]
                  [--kernel-coverage DIR]

``--seed N``: the examples are a function of N (default: 0 for ``ci``, random
for ``dev`` and ``fuzz``); with a seed no example database is used.  A run of
more than ``CHUNK_EXAMPLES`` (1000) examples runs hypothesis' engine in chunks
(``vfio_hil._fuzz.campaign``), so a long run stays in bounded memory.

``--lab`` boots the kernel with its device agent and fuzzes here: hypothesis,
the model and the comparison run on the host at native speed, and only each
step's ioctls, writes and counter reads run in the guest (``vfio_hil._agent``).
With ``--in-guest`` the whole fuzzer runs in the guest instead
(``python -m vfio_hil fuzz --devices-from-env``), as before the agent.
Exit status: 0 agreement, 1 a disagreement, 2 usage or setup error, 3 the
guest failed, 130 interrupted (Ctrl-C; the statistics so far are printed).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vfio_hil._cli.common import (
    PROFILES,
    add_iommu_option,
    in_lab,
    lab_kernel,
    lab_paths,
    positive,
    seconds,
)
from vfio_hil._device import Device
from vfio_hil._exit import Exit

if TYPE_CHECKING:
    from hypothesis import settings

    from vfio_hil._lab.agent import LabAgent

__all__ = ["LAB_TIMEOUT_S", "add_parser"]

LAB_TIMEOUT_S = 2400.0


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "fuzz",
        help="drive a device and the model in lockstep with hypothesis",
        description="Drive a device and the model in lockstep with hypothesis' state machine.",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--device", action="append", metavar="ADDR", help="a vfio-pci device")
    where.add_argument("--sim", metavar="PRESET[:VECTORS][@KERNEL]", help="a simulated device")
    where.add_argument(
        "--lab",
        type=lab_kernel,
        action="append",
        metavar="KERNEL",
        help="boot KERNEL in QEMU, fuzz its devices; given twice or more, boot each and "
        "compare the kernels with each other too (kernel-vs-kernel)",
    )
    where.add_argument(
        "--devices-from-env",
        action="store_true",
        help="every address in VFIO_HIL_DEVICES (what --lab runs in the guest)",
    )
    parser.add_argument("--profile", choices=PROFILES, default="ci")
    parser.add_argument("--max-examples", type=positive, metavar="N", help="override the profile's")
    parser.add_argument(
        "--seed",
        type=int,
        metavar="N",
        help="draw the examples from seed N (default: 0 for ci, random for dev and fuzz)",
    )
    parser.add_argument(
        "--in-guest",
        action="store_true",
        help="--lab: run hypothesis and the model inside the guest too (default: here, "
        "with only the devices in the guest, behind its agent)",
    )
    parser.add_argument("--out", type=Path, metavar="DIR", help="where counterexamples go")
    parser.add_argument(
        "--timeout",
        type=seconds,
        metavar="S",
        help=f"--lab: hard limit per guest (default {LAB_TIMEOUT_S:.0f} s; the ci profile "
        "takes ~16 min under TCG)",
    )
    parser.add_argument(
        "--kernel-coverage",
        type=Path,
        metavar="DIR",
        help="--lab iommufd-cov: collect each guest's kernel line coverage under DIR "
        "(a gcovr report per guest; `vfio-hil lab coverage` merges them)",
    )
    parser.add_argument(
        "--coverage",
        action="store_true",
        help="print the state-space cells the run reached and those it never did",
    )
    parser.add_argument(
        "--coverage-html",
        type=Path,
        metavar="FILE",
        help="--coverage, and write its heat map to FILE (one static HTML page)",
    )
    add_iommu_option(parser)
    parser.set_defaults(handler=_fuzz)


def _fuzz_one(
    label: str,
    open_device: Callable[[], Device],
    chosen: settings,
    out: Path | None,
    seed: int | None = None,
    peers: Sequence[Callable[[], Device]] = (),
) -> int:
    from vfio_hil._errors import VfioHilError
    from vfio_hil._fuzz.campaign import run_campaign
    from vfio_hil.stateful import Divergence, FuzzStats, make_machine

    def report(stats: FuzzStats, verdict: str = "running") -> None:
        rate = stats.steps / stats.seconds if stats.seconds else 0.0
        print(
            f"{label}: {verdict}; {stats.examples} examples, {stats.steps} steps in "
            f"{stats.seconds:.1f}s ({rate:.0f} steps/s)",
            flush=True,
        )

    machine = make_machine(open_device, settings=chosen, out_dir=out, progress=report, seed=seed)
    machine.context.peers = list(peers)
    code, verdict = Exit.OK, "agree"
    try:
        run_campaign(machine, seed=seed)  # chunked: a long run stays in bounded memory
    except Divergence as exc:
        print(exc, file=sys.stderr)
        code, verdict = Exit.FAILED, "DISAGREE"
    except KeyboardInterrupt:
        code, verdict = Exit.INTERRUPTED, "interrupted"
    finally:
        in_flight = sys.exc_info()[0] is not None
        try:
            machine.close_device()
        except (VfioHilError, KeyboardInterrupt):
            # An agent that is gone cannot be cleaned (it cleans up as it exits);
            # that must not hide the interrupt or the finding that came first.
            if code == Exit.OK and not in_flight:
                raise
    stats = machine.stats()
    report(stats, verdict)
    for path in stats.counterexamples:
        print(f"  counterexample: {path}")
    return code


def _fuzz(args: argparse.Namespace) -> int:
    from vfio_hil._errors import VfioHilError
    from vfio_hil._fuzz.context import OUT_ENV, check_out_dir, default_out_dir
    from vfio_hil._fuzz.profiles import fuzz_database

    # Where a counterexample would go, checked now: a typo costs seconds, not a run.
    env = next((v for v in (OUT_ENV, "VFIO_HIL_RESULTS") if os.environ.get(v)), None)
    if args.out is not None or env:
        check_out_dir(args.out or default_out_dir(), "--out" if args.out else str(env))
    fuzz_database()  # so is a bad VFIO_HIL_FUZZ_DB or VFIO_HIL_FUZZ_DB_SHARED, any profile
    if args.timeout is not None and not args.lab:
        raise VfioHilError(
            "--timeout limits a lab guest; on a device or a simulation it would do nothing",
            "give it with --lab, or stop a long run with Ctrl-C (the statistics are printed)",
        )
    if args.in_guest and not args.lab:
        raise VfioHilError("--in-guest says where a --lab run fuzzes", "give it with --lab")
    if args.kernel_coverage is not None:
        from vfio_hil._lab.run import COVERAGE_ENV

        if not args.lab:
            raise VfioHilError("--kernel-coverage is a lab guest's", "give --lab iommufd-cov")
        os.environ[COVERAGE_ENV] = str(args.kernel_coverage.absolute())  # every guest booted
    if args.in_guest and (args.coverage or args.coverage_html):
        raise VfioHilError(
            "--coverage is recorded where the model runs, and --in-guest runs it in the guest",
            "leave --in-guest out (the model then runs here, the devices in the guest)",
        )
    if args.lab and not args.in_guest:
        with _coverage(args):
            return _fuzz_on_agents(args)
    if args.lab:
        inner = [sys.executable, "-m", "vfio_hil", "fuzz", "--devices-from-env"]
        inner += ["--profile", args.profile] + (["--out", str(args.out)] if args.out else [])
        inner += ["--max-examples", str(args.max_examples)] if args.max_examples else []
        inner += ["--seed", str(args.seed)] if args.seed is not None else []
        if len(args.lab) > 1:
            raise VfioHilError(
                "--in-guest fuzzes one guest at a time; kernels are compared on the host",
                "give one --lab with --in-guest, or leave --in-guest out",
            )
        return in_lab(args.lab[0], inner, timeout=args.timeout or LAB_TIMEOUT_S, iommu=args.iommu)
    from vfio_hil._targets import env_list, parse_target, with_iommu

    specs = [f"sim:{args.sim.removeprefix('sim:')}"] if args.sim else list(args.device or [])
    if args.devices_from_env:
        specs = env_list("VFIO_HIL_DEVICES") or []
        if not specs:
            raise VfioHilError("VFIO_HIL_DEVICES names no device", "set it, or use --device")
    mode = args.iommu or os.environ.get("VFIO_HIL_IOMMU") or None
    # every spec checked before any run
    targets = [parse_target(with_iommu(spec, mode)) for spec in specs]
    chosen = _settings(args)
    codes: list[int] = []
    with _coverage(args):
        for target in targets:
            codes.append(_fuzz_one(target.spec, target.open, chosen, args.out, args.seed))
            if codes[-1] == Exit.INTERRUPTED:
                break
    return max(codes, default=Exit.OK)


def _coverage(args: argparse.Namespace) -> contextlib.AbstractContextManager[None]:
    """--coverage, --coverage-html: record the cells, report them at the end."""
    from vfio_hil._coverage.report import reported

    return reported(args.coverage, args.coverage_html, "vfio-hil fuzz")


def _settings(args: argparse.Namespace) -> settings:
    from hypothesis import settings

    from vfio_hil._fuzz.profiles import fuzz_settings

    chosen = fuzz_settings(args.profile)
    if args.max_examples:
        chosen = settings(chosen, max_examples=args.max_examples)
    return chosen


def _fuzz_on_agents(args: argparse.Namespace) -> int:
    """Hypothesis and the model here, the devices in the guest (its agent).

    One ``--lab``: each of its kernels in turn.  Several: every guest at
    once, each device fuzzed on all of them with the same steps, each kernel
    against its own model and against the first ``--lab``'s kernel."""
    from vfio_hil._cli.lab import on_agents
    from vfio_hil._targets import with_iommu

    chosen = _settings(args)
    timeout = args.timeout or LAB_TIMEOUT_S
    guest_iommu, path = lab_paths(args.iommu)

    def fuzz_guests(*labs: LabAgent) -> int:
        first = labs[0]
        codes: list[int] = []
        for address in first.devices:
            names = " vs ".join(lab.kernel.name for lab in labs)
            spec = with_iommu(address, path)
            opener = functools.partial(first.channel.open, spec)
            peers = [functools.partial(lab.channel.open, spec) for lab in labs[1:]]
            code = _fuzz_one(f"lab {names} {address}", opener, chosen, args.out, args.seed, peers)
            codes.append(code)
            if code == Exit.INTERRUPTED:
                break
        return max(codes, default=Exit.OK)

    if len(args.lab) == 1:
        return on_agents(args.lab, fuzz_guests, timeout, iommu=guest_iommu)
    return on_agents(args.lab, fuzz_guests, timeout, together=True, iommu=guest_iommu)
