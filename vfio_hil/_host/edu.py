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

__all__ = ["EDU_DEVICE", "EDU_VENDOR", "EduStimulus", "RegionAccess", "is_edu"]

EDU_VENDOR = 0x1234
EDU_DEVICE = 0x11E8

IRQ_STATUS = 0x24
IRQ_RAISE = 0x60
IRQ_ACK = 0x64

PCI_COMMAND = 0x04
PCI_COMMAND_MEMORY = 1 << 1
PCI_COMMAND_MASTER = 1 << 2
_NEEDED = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER
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
    DMA write, dropped without it) on; a reset or reopen clears both.  The
    read-modify-write keeps every other bit, INTx-disable (bit 10) included.
    With ``keep_enabled=False`` that happens once, here, so a test can turn
    bus mastering off itself and see MSIs dropped.
    """

    def __init__(self, device: RegionAccess, *, keep_enabled: bool = True) -> None:
        self.device = device
        self.keep_enabled = keep_enabled
        self.enable()

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
        self._mmio_ready()
        self.device.write_region(_BAR0, IRQ_RAISE, _U32.pack(value & 0xFFFFFFFF))

    def clear_irq(self, value: int = 0xFFFFFFFF) -> None:
        """Clear ``value``'s bits from the status; INTx drops when none is left."""
        self._mmio_ready()
        self.device.write_region(_BAR0, IRQ_ACK, _U32.pack(value & 0xFFFFFFFF))

    def status(self) -> int:
        """The interrupt status register."""
        self._mmio_ready()
        return int(_U32.unpack(self.device.read_region(_BAR0, IRQ_STATUS, 4))[0])

    def __repr__(self) -> str:
        return f"EduStimulus({self.device.name})"
