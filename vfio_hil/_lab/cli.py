"""``vfio-hil lab``: run, fetch and list lab kernels.

    vfio-hil lab run [--kernel SPEC]... [--accel auto|kvm|tcg] [--devices PRESET]
                     [--timeout S] [--results DIR] [--show-command] -- COMMAND...
    vfio-hil lab fetch [--kernel SPEC]... [--refresh]
    vfio-hil lab kernels

Exit status of ``run``: 0 when the command passed on every kernel, 1 when it
failed on some kernel (nonzero exit), 3 when a guest failed (timeout, boot
failure, kernel Oops/BUG/panic/lockup), 2 for usage and setup errors, 130
when stopped by Ctrl-C or SIGTERM (the guest is killed first).
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from vfio_hil._lab._util import LabError
from vfio_hil._lab.kernels import MATRIX, Kernel, cache_dir, cached_kernels, parse_specs, resolve
from vfio_hil._lab.qemu import PRESETS
from vfio_hil._lab.run import DEFAULT_TIMEOUT_S, run_lab, show_commands

EXIT_OK, EXIT_COMMAND_FAILED, EXIT_USAGE, EXIT_GUEST_FAILED = 0, 1, 2, 3
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vfio-hil lab",
        description="Boot Debian kernels in QEMU with emulated PCI devices behind an "
        "emulated IOMMU, bind them to vfio-pci and run a command in the guest.",
    )
    sub = parser.add_subparsers(dest="action", required=True)
    kernel_help = (
        "6.1, 6.12, 7, newest, all, X.Y, or VMLINUZ[:MODULES_DIR]; repeatable (default: all)"
    )

    run = sub.add_parser("run", help="run COMMAND in a guest per kernel")
    run.add_argument("--kernel", action="append", metavar="SPEC", help=kernel_help)
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
        "--timeout",
        type=float,
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
    run.add_argument("--memory", default="2G", help="guest memory (default: 2G)")
    run.add_argument("--cpus", type=int, default=2, help="guest vCPUs (default: 2)")
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
        help="print the virtme-run command and guest script, then exit",
    )
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND...")

    fetch = sub.add_parser("fetch", help="download kernels into the cache")
    fetch.add_argument("--kernel", action="append", metavar="SPEC", help=kernel_help)
    fetch.add_argument(
        "--refresh", action="store_true", help="update the package lists and fetch newer releases"
    )

    sub.add_parser("kernels", help="list cached kernels")
    return parser


def _kernels(specs: Sequence[str] | None, refresh: bool = False) -> list[Kernel]:
    return [resolve(spec, refresh=refresh) for spec in parse_specs(specs or ["all"])]


def _env(pairs: Sequence[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        # The name goes into `export NAME=...` in the guest script.
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise LabError(f"--env wants NAME=VALUE with a shell variable name, got {pair!r}")
        env[name] = value
    return env


def _run(args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise LabError("no command: vfio-hil lab run [options] -- COMMAND...")
    kernels = _kernels(args.kernel)
    env = _env(args.env)
    if args.show_command:
        print(
            show_commands(
                kernels,
                command,
                accel=args.accel,
                devices=args.devices,
                timeout=args.timeout,
                results_dir=args.results,
                memory=args.memory,
                cpus=args.cpus,
                env=env,
            )
        )
        return EXIT_OK
    results = run_lab(
        kernels,
        command,
        accel=args.accel,
        devices=args.devices,
        timeout=args.timeout,
        results_dir=args.results,
        memory=args.memory,
        cpus=args.cpus,
        env=env,
        verbose=args.verbose,
    )
    if any(r.guest_failed for r in results):
        return EXIT_GUEST_FAILED
    return EXIT_OK if all(r.ok for r in results) else EXIT_COMMAND_FAILED


def _list() -> int:
    kernels = cached_kernels()
    print(f"# cache: {cache_dir()} (matrix: {', '.join(MATRIX)})")
    for k in kernels:
        packages = ", ".join(k.packages) or "local"
        print(f"{k.release:28} upstream {k.upstream:10} {k.source:17} {packages}")
    if not kernels:
        print("# no cached kernels: vfio-hil lab fetch --kernel all")
    return EXIT_OK


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through run_one, which kills the guest


def lab_main(argv: list[str]) -> int:
    """``vfio-hil lab ...``; returns the process exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.action == "run":
            # SIGTERM (a CI runner's cancel) must not leave a QEMU behind either.
            in_main = threading.current_thread() is threading.main_thread()
            previous = signal.signal(signal.SIGTERM, _interrupt) if in_main else None
            try:
                return _run(args)
            except KeyboardInterrupt:
                print("vfio-hil lab: stopped; no guest is left running", file=sys.stderr)
                return EXIT_INTERRUPTED
            finally:
                if previous is not None:
                    signal.signal(signal.SIGTERM, previous)
        if args.action == "fetch":
            for k in _kernels(args.kernel, refresh=args.refresh):
                print(f"{k.name}: {k.release} (upstream {k.upstream}, {k.source}) {k.vmlinuz}")
            return EXIT_OK
        return _list()
    except LabError as exc:
        print(f"vfio-hil lab: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(lab_main(sys.argv[1:]))
