"""What several subcommands share: argument types and the lab runner."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Sequence
from typing import Literal

__all__ = [
    "PROFILES",
    "add_iommu_option",
    "guest_memory",
    "in_lab",
    "lab_kernel",
    "lab_paths",
    "positive",
    "seconds",
]

PROFILES = ("ci", "dev", "fuzz")


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a positive whole number, not {text!r}")
    return value


def seconds(text: str) -> float:
    """A positive, finite number of seconds (``--timeout``)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"a positive number of seconds, not {text!r}")
    return value


_MEMORY = re.compile(r"[1-9][0-9]*[KMGT]?", re.IGNORECASE)


def guest_memory(text: str) -> str:
    """QEMU's ``-m`` size: a number with an optional K, M, G or T (``2G``)."""
    if not _MEMORY.fullmatch(text):
        raise argparse.ArgumentTypeError(f"a size such as 2G or 2048M, not {text!r}")
    return text


def lab_kernel(text: str) -> str:
    """``--lab``'s kernel spec; an empty one would read as "no --lab" and
    quietly run on the host instead."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"a kernel such as 6.12, 7 or all, not {text!r}")
    return text.strip()


def add_iommu_option(parser: argparse.ArgumentParser) -> None:
    """``--iommu MODE``: how real and lab devices are opened."""
    from vfio_hil._targets import IOMMU_PATHS

    parser.add_argument(
        "--iommu",
        choices=IOMMU_PATHS,
        default=None,
        help="open devices by group (container + group), cdev (/dev/vfio/devices + "
        "iommufd) or auto (cdev where there is one); noiommu: boot --lab guests without "
        "an IOMMU (needs --lab iommufd) (default: VFIO_HIL_IOMMU, else auto)",
    )


def lab_paths(mode: str | None) -> tuple[Literal["intel", "none"], str | None]:
    """(the guest's platform IOMMU, the open path in it) for ``--iommu MODE``."""
    if mode == "noiommu":
        return "none", "group"
    return "intel", mode


def in_lab(
    kernel: str,
    command: Sequence[str],
    timeout: float | None = None,
    iommu: str | None = None,
    memory: str | None = None,
    kernel_args: Sequence[str] = (),
) -> int:
    """Run ``command`` in a lab guest per kernel of ``kernel`` (``vfio-hil lab run``);
    ``iommu``: an ``--iommu`` mode, for the guest (noiommu) and its command;
    ``memory``, ``kernel_args``: the guest's, when the defaults are not enough."""
    from vfio_hil._cli.lab import run_guarded

    guest, path = lab_paths(iommu)
    options: dict[str, object] = {"timeout": timeout} if timeout else {}
    if memory:
        options["memory"] = memory
    if kernel_args:
        options["kernel_args"] = tuple(kernel_args)
    if guest != "intel":
        options["iommu"] = guest
    if path:
        options["env"] = {"VFIO_HIL_IOMMU": path}
    return run_guarded([kernel], command, **options)
