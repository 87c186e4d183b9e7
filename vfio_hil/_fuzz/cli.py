"""Command-line entry points: ``fuzz``, ``bench mutants`` and ``replay``.

    vfio-hil fuzz (--device ADDR | --sim PRESET[@KERNEL] | --lab KERNEL | --devices-from-env)
                  [--profile ci|dev|fuzz] [--max-examples N] [--out DIR] [--timeout S]
    vfio-hil bench mutants [--only NAME]... [--no-shrink] [--profile ci|dev|fuzz] [--out DIR]
    vfio-hil replay FILE [--device ADDR | --sim PRESET[:VECTORS][@KERNEL]]

``vfio_hil.cli`` forwards these subcommands here; ``--lab`` runs
``python -m vfio_hil.cli fuzz --devices-from-env`` inside the guest.
Exit status: 0 success, 1 a disagreement (or an undetected mutant, or a
failed replay), 2 usage or setup error, 130 interrupted (Ctrl-C; the
statistics so far are printed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from vfio_hil._device import Device
from vfio_hil._errors import VfioError, VfioHilError

__all__ = ["bench_main", "fuzz_main", "replay_main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
_PROFILES = ("ci", "dev", "fuzz")
LAB_TIMEOUT_S = 2400.0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a positive whole number, not {text!r}")
    return value


def _fuzz_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vfio-hil fuzz",
        description="Drive a device and the model in lockstep with hypothesis' state machine.",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--device", action="append", metavar="ADDR", help="a vfio-pci device")
    where.add_argument("--sim", metavar="PRESET[@KERNEL]", help="a simulated device")
    where.add_argument("--lab", metavar="KERNEL", help="boot KERNEL in QEMU, fuzz its devices")
    where.add_argument(
        "--devices-from-env",
        action="store_true",
        help="every address in VFIO_HIL_DEVICES (what --lab runs in the guest)",
    )
    parser.add_argument("--profile", choices=_PROFILES, default="ci")
    parser.add_argument(
        "--max-examples", type=_positive, metavar="N", help="override the profile's"
    )
    parser.add_argument("--out", type=Path, metavar="DIR", help="where counterexamples go")
    parser.add_argument(
        "--timeout",
        type=float,
        default=LAB_TIMEOUT_S,
        metavar="S",
        help=f"--lab: hard limit per guest (default {LAB_TIMEOUT_S:.0f} s; the ci profile "
        "takes ~16 min under TCG)",
    )
    return parser


def _fuzz_one(
    label: str, open_device: Callable[[], Device], chosen: settings, out: Path | None
) -> int:
    from vfio_hil.stateful import Divergence, FuzzStats, make_machine

    def report(stats: FuzzStats, verdict: str = "running") -> None:
        rate = stats.steps / stats.seconds if stats.seconds else 0.0
        print(
            f"{label}: {verdict}; {stats.examples} examples, {stats.steps} steps in "
            f"{stats.seconds:.1f}s ({rate:.0f} steps/s)",
            flush=True,
        )

    machine = make_machine(open_device, settings=chosen, out_dir=out, progress=report)
    code, verdict = EXIT_OK, "agree"
    try:
        run_state_machine_as_test(machine, settings=chosen)
    except Divergence as exc:
        print(exc, file=sys.stderr)
        code, verdict = EXIT_FAILED, "DISAGREE"
    except KeyboardInterrupt:
        code, verdict = EXIT_INTERRUPTED, "interrupted"
    finally:
        machine.close_device()
    stats = machine.stats()
    report(stats, verdict)
    for path in stats.counterexamples:
        print(f"  counterexample: {path}")
    return code


def fuzz_main(argv: Sequence[str]) -> int:
    """``vfio-hil fuzz``: the state machine on one target, or on the lab's devices."""
    args = _fuzz_parser().parse_args(list(argv))
    if args.lab:
        from vfio_hil._lab.cli import lab_main

        inner = [sys.executable, "-m", "vfio_hil.cli", "fuzz", "--devices-from-env"]
        inner += ["--profile", args.profile] + (["--out", str(args.out)] if args.out else [])
        inner += ["--max-examples", str(args.max_examples)] if args.max_examples else []
        timeout = ["--timeout", str(args.timeout)]
        return lab_main(["run", "--kernel", args.lab, *timeout, "--", *inner])
    from vfio_hil._targets import parse_target

    specs = [f"sim:{args.sim.removeprefix('sim:')}"] if args.sim else list(args.device or [])
    if args.devices_from_env:
        specs = [a for a in os.environ.get("VFIO_HIL_DEVICES", "").split(",") if a.strip()]
        if not specs:
            print("VFIO_HIL_DEVICES names no device", file=sys.stderr)
            return EXIT_USAGE
    from vfio_hil._fuzz.profiles import fuzz_settings

    chosen = fuzz_settings(args.profile)
    if args.max_examples:
        chosen = settings(chosen, max_examples=args.max_examples)
    try:
        targets = [parse_target(spec) for spec in specs]
        codes: list[int] = []
        for target in targets:
            codes.append(_fuzz_one(target.spec, target.open, chosen, args.out))
            if codes[-1] == EXIT_INTERRUPTED:
                break
    except (VfioHilError, VfioError) as exc:
        print(f"vfio-hil fuzz: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return max(codes, default=EXIT_OK)


def bench_main(argv: Sequence[str]) -> int:
    """``vfio-hil bench mutants``: how fast the machine finds each mutant."""
    from vfio_hil._fuzz.bench import format_table, run_mutant
    from vfio_hil._fuzz.mutants import MUTANTS

    names = [m.name for m in MUTANTS]
    parser = argparse.ArgumentParser(prog="vfio-hil bench mutants")
    parser.add_argument("what", nargs="?", choices=["mutants"], default="mutants")
    parser.add_argument("--only", action="append", choices=names, metavar="NAME")
    parser.add_argument("--no-shrink", action="store_true", help="stop at the first failure")
    parser.add_argument("--profile", choices=_PROFILES, default="ci")
    parser.add_argument("--out", type=Path, metavar="DIR", help="write counterexamples here")
    args = parser.parse_args(list(argv))
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    started = time.monotonic()
    rows = []
    for mutant in chosen:
        rows.append(
            run_mutant(mutant, profile=args.profile, shrink=not args.no_shrink, out_dir=args.out)
        )
        print(f"{mutant.name}: {'detected' if rows[-1].detected else 'NOT detected'}", flush=True)
    print(format_table(rows))
    found = sum(r.detected for r in rows)
    print(f"{found}/{len(rows)} detected in {time.monotonic() - started:.1f}s")
    return EXIT_OK if found == len(rows) else EXIT_FAILED


def replay_main(argv: Sequence[str]) -> int:
    """``vfio-hil replay FILE``: play a scenario file (e.g. a counterexample)."""
    from vfio_hil._fuzz.replay import replay

    parser = argparse.ArgumentParser(prog="vfio-hil replay")
    parser.add_argument("file", type=Path)
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--device", metavar="ADDR", help="a device bound to vfio-pci")
    target.add_argument(
        "--sim",
        metavar="PRESET[@KERNEL]",
        help="a preset, or virtio_msix:N for N MSI-X vectors (default: virtio_msix)",
    )
    args = parser.parse_args(list(argv))
    spec = args.device or f"sim:{(args.sim or 'virtio_msix').removeprefix('sim:')}"
    return replay(args.file, spec)
