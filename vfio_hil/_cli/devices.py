"""``vfio-hil devices``: the PCI devices bound to vfio-pci."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vfio_hil._exit import Exit

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    sub.add_parser("devices", help="list PCI devices bound to vfio-pci").set_defaults(
        handler=_devices
    )


def _devices(_: argparse.Namespace) -> int:
    from vfio_hil._host import list_vfio_devices

    found = list_vfio_devices()
    for dev in found:
        print(dev)
    if not found:
        print(
            "no PCI device is bound to vfio-pci here (see docs/devices.md to bind one)",
            file=sys.stderr,
        )
    return Exit.OK
