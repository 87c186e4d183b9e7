"""``EduStimulus``: make QEMU's edu device (1234:11e8) raise and clear interrupts.

hw/misc/edu.c, BAR0 (region 0), 32-bit registers:

* 0x24 interrupt status (read);
* 0x60 interrupt raise (write): status |= value, then MSI vector 0 when MSI is
  enabled, else INTx asserted;
* 0x64 interrupt acknowledge (write): status &= ~value; INTx drops at 0.

Works on any ``Device`` (``HostDevice`` or ``SimDevice``): it only reads and
writes regions.
"""

from __future__ import annotations

import struct
from typing import Protocol

from vfio_hil import _uapi as u
from vfio_hil._hw import (
    CMD_MASTER,
    CMD_MEMORY,
    EDU_DEVICE,
    EDU_IRQ_ACK,
    EDU_IRQ_RAISE,
    EDU_IRQ_STATUS,
    EDU_VENDOR,
    PCI_COMMAND,
)
from vfio_hil._irq import _U32 as _U32_MAX
from vfio_hil._irq import _field

__all__ = ["EduStimulus", "RegionAccess", "is_edu"]

_NEEDED = CMD_MEMORY | CMD_MASTER
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_BAR0 = u.VFIO_PCI_BAR0_REGION_INDEX
_CONFIG = u.VFIO_PCI_CONFIG_REGION_INDEX


class RegionAccess(Protocol):
    """The part of ``Device`` the stimulus uses."""

    @property
    def name(self) -> str: ...

    def read_region(self, index: int, offset: int, size: int) -> bytes: ...

    def write_region(self, index: int, offset: int, data: bytes) -> None: ...


def is_edu(vendor: int, device: int) -> bool:
    return (vendor, device) == (EDU_VENDOR, EDU_DEVICE)


class EduStimulus:
    """The device side of an edu: ``raise_irq``, ``clear_irq``, ``status``.

    Before each MMIO it makes sure PCI_COMMAND has memory decoding (vfio-pci
    answers BAR access with EIO without it) and bus mastering (edu's MSI is a
    DMA write, dropped without it) on: every open shows bus mastering off.
    The read-modify-write keeps every other bit, INTx-disable (bit 10)
    included.  Creating one touches nothing.  With ``keep_enabled=False`` it
    never writes PCI_COMMAND, so a test can leave bus mastering off and see
    MSIs dropped.
    """

    def __init__(self, device: RegionAccess, *, keep_enabled: bool = True) -> None:
        self.device = device
        self.keep_enabled = keep_enabled

    def enable(self) -> int:
        """Set memory + bus master in PCI_COMMAND if needed; returns the command."""
        command = int(_U16.unpack(self.device.read_region(_CONFIG, PCI_COMMAND, 2))[0])
        if command & _NEEDED != _NEEDED:
            command |= _NEEDED
            self.device.write_region(_CONFIG, PCI_COMMAND, _U16.pack(command))
        return command

    def _mmio_ready(self) -> None:
        if self.keep_enabled:
            self.enable()

    def raise_irq(self, value: int = 1) -> None:
        """OR ``value`` into the status and raise (MSI vector 0 or INTx)."""
        value = _field("value", value, 0, _U32_MAX)  # 2**32 would wrap to 0: no interrupt
        self._mmio_ready()
        self.device.write_region(_BAR0, EDU_IRQ_RAISE, _U32.pack(value))

    def clear_irq(self, value: int = 0xFFFFFFFF) -> None:
        """Clear ``value``'s bits from the status; INTx drops when none is left."""
        value = _field("value", value, 0, _U32_MAX)
        self._mmio_ready()
        self.device.write_region(_BAR0, EDU_IRQ_ACK, _U32.pack(value))

    def status(self) -> int:
        """The interrupt status register."""
        self._mmio_ready()
        return int(_U32.unpack(self.device.read_region(_BAR0, EDU_IRQ_STATUS, 4))[0])

    def __repr__(self) -> str:
        return f"EduStimulus({self.device.name})"
