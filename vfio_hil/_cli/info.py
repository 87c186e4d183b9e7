"""``vfio-hil info TARGET``: GET_INFO and GET_IRQ_INFO."""

from __future__ import annotations

import argparse
from typing import Any

from vfio_hil._errors import VfioError
from vfio_hil._exit import Exit

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    info = sub.add_parser("info", help="show GET_INFO and GET_IRQ_INFO of a target")
    info.add_argument("target", help="an address bound to vfio-pci, or sim:PRESET[@KERNEL]")
    info.set_defaults(handler=_info)


def _info(args: argparse.Namespace) -> int:
    from vfio_hil._irq import IrqIndex
    from vfio_hil._targets import parse_target

    with parse_target(args.target).open() as dev:
        info = dev.info()
        print(f"{dev.name}: flags={info.flags:#x} regions={info.num_regions} irqs={info.num_irqs}")
        print(f"  kernel profile {dev.kernel.name}")
        path = getattr(dev, "iommu", None)  # a real or remote device's open path
        if path is not None:
            unsafe = " (no IOMMU: unsafe NOIOMMU mode)" if path == "noiommu" else ""
            print(f"  opened by {path}{unsafe}")
        for index in IrqIndex:
            try:
                irq = dev.irq_info(index)
                print(f"  {index.name:5} flags={int(irq.flags):#x} count={irq.count}")
            except VfioError as err:
                print(f"  {index.name:5} {err}")
    return Exit.OK
