"""``vfio-hil``: the command line.

    vfio-hil run [--device ADDRESS]... [--sim PRESET[@KERNEL]]... [--lab KERNEL] [-- PYTEST ARGS]
    vfio-hil diff TARGET [--seeds N]
    vfio-hil fuzz (--device ADDRESS | --sim PRESET[@KERNEL] | --lab KERNEL) [--profile ci|dev|fuzz]
    vfio-hil replay FILE [--device ADDRESS | --sim PRESET[:VECTORS][@KERNEL]]
    vfio-hil bench loopback [--lab KERNEL]
    vfio-hil bench mutants [--only NAME]... [--no-shrink]
    vfio-hil devices
    vfio-hil info TARGET
    vfio-hil lab (run|fetch|kernels) ...

TARGET is a PCI address bound to vfio-pci or ``sim:PRESET[@KERNEL]``.
Exit status: 0 success, 1 checks failed, 2 usage or setup error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vfio_hil._errors import VfioError, VfioHilError

__all__ = ["main", "make_parser"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vfio-hil", description="Check VFIO interrupt semantics on real and simulated devices."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the conformance suite (the main job)")
    run.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="a PCI device bound to vfio-pci (repeatable)",
    )
    run.add_argument(
        "--sim",
        action="append",
        default=[],
        metavar="PRESET[@KERNEL]",
        help="a simulated device: edu, virtio_msix, virtio_msix_2048 (repeatable)",
    )
    run.add_argument(
        "--lab", metavar="KERNEL", help="boot KERNEL (6.1, 6.12, newest, all) in QEMU and run there"
    )
    run.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")

    diff = sub.add_parser(
        "diff", help="play the spec matrix and random sequences against the model"
    )
    diff.add_argument("target")
    diff.add_argument("--seeds", type=int, default=20, help="random sequences (default 20)")
    diff.add_argument("--length", type=int, default=40, help="steps per sequence (default 40)")

    # fuzz, replay and bench mutants parse their own arguments (vfio_hil/_fuzz/cli.py).
    for name, help_text in (
        ("fuzz", "drive a device and the model in lockstep with hypothesis (fuzz --help)"),
        ("replay", "play a scenario file, e.g. a counterexample (replay --help)"),
    ):
        forwarded = sub.add_parser(name, help=help_text, add_help=False)
        forwarded.add_argument("args", nargs=argparse.REMAINDER)
    bench = sub.add_parser(
        "bench", help="benchmarks: loopback (Python against C), mutants (the fuzzer's power)"
    )
    bench.add_argument("name", choices=["loopback", "mutants"])
    bench.add_argument("--lab", metavar="KERNEL", help="loopback: run it in the lab on KERNEL")

    sub.add_parser("devices", help="list PCI devices bound to vfio-pci")
    info = sub.add_parser("info", help="show GET_INFO and GET_IRQ_INFO of a target")
    info.add_argument("target")
    lab = sub.add_parser("lab", help="boot kernels in QEMU: run, fetch, kernels", add_help=False)
    lab.add_argument("lab_args", nargs=argparse.REMAINDER)
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    suite = ["-m", "pytest", "--pyargs", "vfio_hil.suite"]
    if args.lab:  # the lab points pytest's cache into its results directory
        from vfio_hil._lab.cli import lab_main

        return lab_main(
            ["run", "--kernel", args.lab, "--", sys.executable, *suite, *args.pytest_args]
        )
    suite += ["-p", "no:cacheprovider"]  # leave no .pytest_cache where the user stands
    import pytest

    targets = [f"--vfio-device={d}" for d in args.device] + [f"--vfio-sim={s}" for s in args.sim]
    code = pytest.main(suite[2:] + targets + list(args.pytest_args))
    return EXIT_OK if code == 0 else EXIT_FAILED if code == 1 else EXIT_USAGE


def cmd_diff(args: argparse.Namespace) -> int:
    from vfio_hil._diff.check import reopen_sim, run_differential
    from vfio_hil._sim.device import SimDevice
    from vfio_hil._targets import parse_target

    target = parse_target(args.target)
    if target.simulated:
        device = target.open()
        report = run_differential(
            lambda: device,
            reopen=reopen_sim,
            seeds=range(args.seeds),
            length=args.length,
            profile=device.profile if isinstance(device, SimDevice) else None,
        )
    else:
        report = run_differential(
            target.open,
            seeds=range(args.seeds),
            length=args.length,
            progress=lambda m: print(m, file=sys.stderr),
        )
    print(report.summary())
    if report.disagreements:
        print(report.details())
        return EXIT_FAILED
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    module = ["-m", "vfio_hil._bench.loopback"]
    if args.lab:
        from vfio_hil._lab.cli import lab_main

        return lab_main(["run", "--kernel", args.lab, "--", sys.executable, *module])
    from vfio_hil._bench.loopback import main as loopback_main

    return loopback_main()


def cmd_devices(_: argparse.Namespace) -> int:
    from vfio_hil._host import list_vfio_devices

    devices = list_vfio_devices()
    for dev in devices:
        print(dev)
    if not devices:
        print(
            "no PCI device is bound to vfio-pci here (see docs/devices.md to bind one)",
            file=sys.stderr,
        )
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    from vfio_hil._irq import IrqIndex
    from vfio_hil._targets import parse_target

    with parse_target(args.target).open() as dev:
        info = dev.info()
        print(f"{dev.name}: flags={info.flags:#x} regions={info.num_regions} irqs={info.num_irqs}")
        for index in IrqIndex:
            try:
                irq = dev.irq_info(index)
                print(f"  {index.name:5} flags={int(irq.flags):#x} count={irq.count}")
            except VfioError as err:
                print(f"  {index.name:5} {err}")
    return EXIT_OK


COMMANDS = {
    "run": cmd_run,
    "diff": cmd_diff,
    "bench": cmd_bench,
    "devices": cmd_devices,
    "info": cmd_info,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["lab"]:
        from vfio_hil._lab.cli import lab_main

        return lab_main(argv[1:])
    if argv[:1] in (["fuzz"], ["replay"]) or argv[:2] == ["bench", "mutants"]:
        from vfio_hil._fuzz import cli as fuzz_cli

        command = {"fuzz": fuzz_cli.fuzz_main, "replay": fuzz_cli.replay_main}
        return command.get(argv[0], fuzz_cli.bench_main)(argv[1:])
    args = make_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except VfioHilError as err:
        print(f"vfio-hil: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
