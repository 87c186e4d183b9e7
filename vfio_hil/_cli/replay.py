"""``vfio-hil replay FILE``: play a scenario file (e.g. a counterexample)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    replay = sub.add_parser("replay", help="play a scenario file, e.g. a counterexample")
    replay.add_argument("file", type=Path)
    target = replay.add_mutually_exclusive_group()
    target.add_argument("--device", metavar="ADDR", help="a device bound to vfio-pci")
    target.add_argument(
        "--sim",
        metavar="PRESET[:VECTORS][@KERNEL]",
        help="a preset, or virtio_msix:N for N MSI-X vectors (default: virtio_msix)",
    )
    replay.set_defaults(handler=_replay)


def _replay(args: argparse.Namespace) -> int:
    from vfio_hil._fuzz.replay import replay

    spec = args.device or f"sim:{(args.sim or 'virtio_msix').removeprefix('sim:')}"
    return replay(args.file, spec)
