"""``vfio-hil run``: the conformance suite (the main job)."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from vfio_hil._cli.common import add_iommu_option, in_lab, lab_kernel
from vfio_hil._exit import Exit

__all__ = ["TEST_TIMEOUT_S", "add_parser"]

TEST_TIMEOUT_S = 300.0


def add_parser(sub: Any) -> None:
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
        metavar="PRESET[:VECTORS][@KERNEL]",
        help="a simulated device: edu, virtio_msix, virtio_msix_2048 (repeatable)",
    )
    run.add_argument(
        "--lab",
        type=lab_kernel,
        metavar="KERNEL",
        help="boot KERNEL (6.1, 6.12, newest, all) in QEMU and run there",
    )
    add_iommu_option(run)
    run.add_argument(
        "--timeout",
        type=_seconds,
        default=TEST_TIMEOUT_S,
        metavar="S",
        help=f"fail a test that runs longer than S seconds (default {TEST_TIMEOUT_S:.0f}; "
        "0: no limit)",
    )
    run.add_argument(
        "--selftests",
        action="store_true",
        help="also run the kernel's VFIO selftests (vfio-hil selftests build) on the devices",
    )
    run.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    run.set_defaults(handler=_run)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"seconds, 0 or more, not {text!r}")
    return value


def _selftests_guest() -> tuple[str, tuple[str, ...]]:
    from vfio_hil._selftests.lab import GUEST_KERNEL_ARGS, GUEST_MEMORY

    return GUEST_MEMORY, GUEST_KERNEL_ARGS


def _run(args: argparse.Namespace) -> int:
    # pytest-timeout (a dependency) fails a hung test instead of hanging the run.
    suite = ["--pyargs", "vfio_hil.suite", "-o", f"timeout={args.timeout:g}"]
    suite += ["--vfio-selftests"] if args.selftests else []
    if args.lab:  # the lab points pytest's cache into its results directory
        command = [sys.executable, "-m", "pytest", *suite, *args.pytest_args]
        # The selftests' guest has room for vfio_dma_mapping_test's hugepages.
        memory, kargs = _selftests_guest() if args.selftests else (None, ())
        return in_lab(args.lab, command, iommu=args.iommu, memory=memory, kernel_args=kargs)
    import pytest

    targets = [f"--vfio-device={d}" for d in args.device] + [f"--vfio-sim={s}" for s in args.sim]
    if args.iommu:
        targets.append(f"--vfio-iommu={args.iommu}")
    # -p no:cacheprovider: leave no .pytest_cache where the user stands
    code = pytest.main([*suite, "-p", "no:cacheprovider", *targets, *args.pytest_args])
    if code == pytest.ExitCode.INTERRUPTED:
        return Exit.INTERRUPTED
    return Exit.OK if code == 0 else Exit.FAILED if code == 1 else Exit.USAGE
