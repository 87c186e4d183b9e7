"""``vfio-hil lab``: run a command in guests, fetch and list lab kernels.

    vfio-hil lab run [--kernel SPEC]... [--accel auto|kvm|tcg] [--devices PRESET]
                     [--iommu intel|none] [--timeout S] [--results DIR]
                     [--show-command] [--coverage] -- COMMAND...
    vfio-hil lab fetch [--kernel SPEC]... [--refresh]
    vfio-hil lab build [--source X.Y|PATH] [--clean] [--coverage]
    vfio-hil lab coverage --out DIR COVERAGE_DIR...
    vfio-hil lab kernels

Exit status of ``run``: 0 when the command passed on every kernel, 1 when it
failed on some kernel (nonzero exit), 3 when a guest failed (timeout, boot
failure, kernel Oops/BUG/panic/lockup), 2 for usage and setup errors, 130
when stopped by Ctrl-C or SIGTERM (the guest is killed first).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from vfio_hil._cli.common import guest_memory, positive, seconds
from vfio_hil._exit import Exit

if TYPE_CHECKING:
    from vfio_hil._lab.agent import LabAgent

__all__ = ["add_parser", "env_pairs", "run_guarded"]

_KERNEL_HELP = (
    "6.1, 6.12, 7, newest, all, X.Y, iommufd, iommufd-cov, or VMLINUZ[:MODULES_DIR]; "
    "repeatable (default: all)"
)


def add_parser(sub: Any) -> None:
    from vfio_hil._lab.qemu import GUEST_IOMMUS, PRESETS
    from vfio_hil._lab.run import DEFAULT_TIMEOUT_S

    lab = sub.add_parser(
        "lab",
        help="boot kernels in QEMU: run, fetch, build, kernels",
        description="Boot Debian kernels in QEMU with emulated PCI devices behind an "
        "emulated IOMMU, bind them to vfio-pci and run a command in the guest.",
    )
    actions = lab.add_subparsers(dest="action", required=True, parser_class=type(lab))

    run = actions.add_parser("run", help="run COMMAND in a guest per kernel")
    run.add_argument("--kernel", action="append", metavar="SPEC", help=_KERNEL_HELP)
    run.add_argument(
        "--accel",
        choices=("auto", "kvm", "tcg"),
        default="auto",
        help="auto probes KVM and falls back to TCG (default: auto)",
    )
    run.add_argument(
        "--devices",
        choices=sorted(PRESETS),
        default="default",
        help="emulated device preset (default: default)",
    )
    run.add_argument(
        "--iommu",
        choices=GUEST_IOMMUS,
        default="intel",
        help="the guest's IOMMU: intel (emulated VT-d) or none (NOIOMMU mode, "
        "needs --kernel iommufd) (default: intel)",
    )
    run.add_argument(
        "--timeout",
        type=seconds,
        default=DEFAULT_TIMEOUT_S,
        metavar="S",
        help=f"hard timeout per guest in seconds (default: {DEFAULT_TIMEOUT_S:.0f})",
    )
    run.add_argument(
        "--results",
        type=Path,
        metavar="DIR",
        help="results directory (default: a new temporary directory)",
    )
    run.add_argument("--memory", type=guest_memory, default="2G", help="guest memory (default: 2G)")
    run.add_argument("--cpus", type=positive, default=2, help="guest vCPUs (default: 2)")
    run.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set an environment variable for the command (repeatable)",
    )
    run.add_argument("--verbose", action="store_true", help="also echo the boot console")
    run.add_argument(
        "--show-command",
        action="store_true",
        help="print the virtme-run command and guest script, then exit (boots nothing)",
    )
    run.add_argument(
        "--coverage",
        action="store_true",
        help="collect the kernel's line coverage of drivers/vfio and drivers/iommu/iommufd "
        "(needs --kernel iommufd-cov) into RESULTS/<release>/coverage: focus.txt, "
        "summary.txt, html/index.html",
    )
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND...")
    run.set_defaults(handler=_lab_errors(_run))

    fetch = actions.add_parser("fetch", help="download kernels into the cache")
    fetch.add_argument("--kernel", action="append", metavar="SPEC", help=_KERNEL_HELP)
    fetch.add_argument(
        "--refresh", action="store_true", help="update the package lists and fetch newer releases"
    )
    fetch.set_defaults(handler=_lab_errors(_fetch))
    build = actions.add_parser(
        "build",
        help="build the lab's own kernel (spec iommufd: IOMMUFD, VFIO cdev, NOIOMMU)",
        description="Build a small kernel with every VFIO open path from Debian's "
        "linux-source (or a given tree) and cache it as kernel spec iommufd. A second "
        "build reuses the object tree and ccache.",
    )
    build.add_argument(
        "--source",
        default=None,
        metavar="X.Y|PATH",
        help="Debian's linux-source-X.Y, or a kernel source tree (default: 7.2)",
    )
    build.add_argument(
        "--clean", action="store_true", help="remove the object tree first (ccache stays)"
    )
    build.add_argument(
        "--coverage",
        action="store_true",
        help="build the gcov variant instead (spec iommufd-cov: counters for drivers/vfio "
        "and drivers/iommu/iommufd; its own object tree)",
    )
    build.set_defaults(handler=_lab_errors(_build))
    cov = actions.add_parser(
        "coverage",
        help="merge the kernel coverage of several runs into one report",
        description="One gcovr report (focus.txt, summary.txt, html/) over the coverage "
        "directories of several `lab run --coverage` or `fuzz --kernel-coverage` runs.",
    )
    cov.add_argument("--out", type=Path, required=True, metavar="DIR", help="report directory")
    cov.add_argument("dirs", nargs="+", type=Path, metavar="COVERAGE_DIR")
    cov.set_defaults(handler=_lab_errors(_coverage))
    actions.add_parser("kernels", help="list cached kernels").set_defaults(
        handler=_lab_errors(_list)
    )


def _lab_errors(handler: Any) -> Any:
    """A LabError is a setup error the user can fix: one line, Exit.USAGE."""

    def call(args: argparse.Namespace) -> int:
        from vfio_hil._lab._util import LabError

        try:
            return int(handler(args))
        except LabError as exc:
            print(f"vfio-hil lab: error: {exc}", file=sys.stderr)
            return Exit.USAGE

    return call


def resolve_kernels(specs: Sequence[str] | None, refresh: bool = False) -> list[Any]:
    """The lab kernels these specs name (default: all), fetched if not cached."""
    from vfio_hil._lab.kernels import parse_specs, resolve

    return [resolve(spec, refresh=refresh) for spec in parse_specs(specs or ["all"])]


def env_pairs(pairs: Sequence[str]) -> dict[str, str]:
    """``--env NAME=VALUE`` pairs; the name goes into ``export NAME=...`` in the guest."""
    from vfio_hil._lab._util import LabError

    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise LabError(f"--env wants NAME=VALUE with a shell variable name, got {pair!r}")
        env[name] = value
    return env


def on_agents(
    kernel_specs: Sequence[str],
    work: Callable[..., int],
    timeout: float,
    *,
    together: bool = False,
    iommu: Literal["intel", "none"] = "intel",
) -> int:
    """Boot each kernel with its device agent and run ``work(lab)`` on the
    host against it, one kernel after the other; ``together``: boot every
    kernel (one each spec) and run ``work(lab, lab, ...)`` once.  An
    ``Exit``; a guest that failed under it wins."""
    from vfio_hil._lab._util import LabError
    from vfio_hil._lab.agent import lab_agent

    codes: list[int] = []
    labs: list[LabAgent] = []
    try:
        kernels = resolve_kernels(kernel_specs)
        if together and len(kernels) != len(kernel_specs):
            raise LabError(
                f"each --lab names one kernel to compare; {' '.join(kernel_specs)} names "
                f"{len(kernels)}: {', '.join(k.name for k in kernels)}"
            )
        groups = [kernels] if together else [[k] for k in kernels]
        for group in groups:
            with contextlib.ExitStack() as stack:
                labs = [
                    stack.enter_context(lab_agent(k, timeout=timeout, iommu=iommu)) for k in group
                ]
                codes.append(work(*labs))
            for lab in labs:
                if lab.result is not None and lab.result.guest_failed:
                    for finding in lab.result.findings:
                        print(
                            f"vfio-hil lab: {lab.kernel.name}: {finding.summary()}", file=sys.stderr
                        )
                    codes.append(Exit.GUEST_FAILED)
            if Exit.INTERRUPTED in codes:
                break
    except KeyboardInterrupt:
        print("vfio-hil lab: stopped; no guest is left running", file=sys.stderr)
        return Exit.INTERRUPTED
    except LabError as exc:
        print(f"vfio-hil lab: error: {exc}", file=sys.stderr)
        return Exit.USAGE
    return max(codes, default=Exit.OK)


def run_guarded(kernel_specs: Sequence[str] | None, command: Sequence[str], **options: Any) -> int:
    """``run_lab`` on these kernels; an ``Exit``.

    ``run_lab`` itself turns SIGTERM into KeyboardInterrupt and kills its
    guests on the way out, so a CI runner's cancel leaves no QEMU behind and
    exits 130 here.  The lab's own errors are usage errors.
    """
    from vfio_hil._lab._util import LabError
    from vfio_hil._lab.run import run_lab

    try:
        results = run_lab(resolve_kernels(kernel_specs), command, **options)
    except KeyboardInterrupt:
        print("vfio-hil lab: stopped; no guest is left running", file=sys.stderr)
        return Exit.INTERRUPTED
    except LabError as exc:
        print(f"vfio-hil lab: error: {exc}", file=sys.stderr)
        return Exit.USAGE
    if any(r.guest_failed for r in results):
        return Exit.GUEST_FAILED
    return Exit.OK if all(r.ok for r in results) else Exit.FAILED


def _run(args: argparse.Namespace) -> int:
    from vfio_hil._lab._util import LabError
    from vfio_hil._lab.run import show_commands

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise LabError("no command: vfio-hil lab run [options] -- COMMAND...")
    options: dict[str, Any] = {
        "accel": args.accel,
        "devices": args.devices,
        "timeout": args.timeout,
        "results_dir": args.results,
        "memory": args.memory,
        "cpus": args.cpus,
        "iommu": args.iommu,
        "env": env_pairs(args.env),
        "coverage": args.coverage,
    }
    if args.show_command:
        print(show_commands(resolve_kernels(args.kernel), command, **options))
        return Exit.OK
    return run_guarded(args.kernel, command, verbose=args.verbose, **options)


def _fetch(args: argparse.Namespace) -> int:
    for k in resolve_kernels(args.kernel, refresh=args.refresh):
        print(f"{k.name}: {k.release} (upstream {k.upstream}, {k.source}) {k.vmlinuz}")
    return Exit.OK


def _build(args: argparse.Namespace) -> int:
    from vfio_hil._lab.build import COVERAGE, DEFAULT_SOURCE, PLAIN, build_kernel
    from vfio_hil._lab.kernels import cache_dir

    variant = COVERAGE if args.coverage else PLAIN
    built = build_kernel(
        cache_dir(), source=args.source or DEFAULT_SOURCE, clean=args.clean, variant=variant
    )
    minutes, seconds = divmod(round(built.seconds), 60)
    what = f"{built.compiled} steps" if built.compiled else "nothing to rebuild"
    cached = "with ccache" if built.ccache else "without ccache"
    print(f"{variant.flavour}: {built.release} (upstream {built.upstream}) in {built.root}")
    print(f"built in {minutes}m{seconds:02d}s on {os.cpu_count()} cores ({what}, {cached})")
    return Exit.OK


def _coverage(args: argparse.Namespace) -> int:
    from vfio_hil._lab import gcov

    rep = gcov.merge(args.out, args.dirs)
    print((rep.directory / "focus.txt").read_text(), end="")
    print(f"# {rep.directory / 'summary.txt'}, {rep.html}")
    return Exit.OK


def _list(_: argparse.Namespace) -> int:
    from vfio_hil._lab.build import BUILT_SOURCE, COVERAGE, COVERAGE_SOURCE, FLAVOUR
    from vfio_hil._lab.kernels import MATRIX, cache_dir, cached_kernels

    kernels = cached_kernels()
    print(f"# cache: {cache_dir()} (matrix: {', '.join(MATRIX)}; built: {FLAVOUR})")
    for k in kernels:
        packages = ", ".join(k.packages) or "local"
        built = {BUILT_SOURCE: FLAVOUR, COVERAGE_SOURCE: COVERAGE.flavour}
        source = f"{built[k.source]} (built)" if k.source in built else k.source
        print(f"{k.release:28} upstream {k.upstream:10} {source:17} {packages}")
    if not kernels:
        print("# no cached kernels: vfio-hil lab fetch --kernel all")
    return Exit.OK
