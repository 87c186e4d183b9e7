"""The simulated function's virtual config space (region 7).

Only what SET_IRQS semantics touch is live: PCI_COMMAND (I/O, memory, bus
master and INTx-disable, which vfio virtualizes, and SERR, which it passes
through); the rest is a plain header with vendor, device, class and
interrupt pin.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from vfio_hil._hw import (
    CMD_INTX_DISABLE,
    CMD_IO,
    CMD_MASTER,
    CMD_MEMORY,
    CMD_SERR,
    PCI_CAPABILITY_LIST,
    PCI_COMMAND,
    PCI_INTERRUPT_PIN,
    PCI_STATUS,
    STATUS_CAP_LIST,
)

__all__ = ["COMMAND_WRITABLE", "ConfigSpace"]

# What a PCI_COMMAND write keeps, measured through vfio-pci on QEMU's edu and
# virtio (6.1, 6.12): 0xffff reads back 0x0507.  vfio_basic_config_write()
# keeps the virtualized bits (I/O, memory, master, INTx-disable) in vconfig;
# the rest goes to the device, where QEMU implements only SERR.
COMMAND_WRITABLE = CMD_IO | CMD_MEMORY | CMD_MASTER | CMD_SERR | CMD_INTX_DISABLE
_FIRST_CAP = 0x40
_CAP_STRIDE = 0x40  # room for the largest (PCIe, 0x3c bytes)


class ConfigSpace:
    def __init__(
        self,
        vendor: int,
        device: int,
        size: int,
        intx_pin: bool,
        intx_disable_changed: Callable[[bool], None],
        capabilities: tuple[int, ...] = (),
        command: int = 0,
    ) -> None:
        self.size = size
        self._bytes = bytearray(size)
        struct.pack_into("<HH", self._bytes, 0, vendor, device)
        self._bytes[PCI_INTERRUPT_PIN] = 1 if intx_pin else 0
        self._chain(capabilities)
        self._changed = intx_disable_changed
        self.restore_command(command)

    def _chain(self, capabilities: tuple[int, ...]) -> None:
        """Link capability IDs (PCIe 0x10, MSI 0x05, MSI-X 0x11) from 0x40 on."""
        if not capabilities:
            return
        self._bytes[PCI_STATUS] |= STATUS_CAP_LIST
        self._bytes[PCI_CAPABILITY_LIST] = _FIRST_CAP
        for n, cap_id in enumerate(capabilities):
            at = _FIRST_CAP + n * _CAP_STRIDE
            last = n == len(capabilities) - 1
            self._bytes[at] = cap_id
            self._bytes[at + 1] = 0 if last else at + _CAP_STRIDE

    @property
    def command(self) -> int:
        return int(struct.unpack_from("<H", self._bytes, PCI_COMMAND)[0])

    def restore_command(self, command: int) -> None:
        """Set PCI_COMMAND as an open shows it (the model's ``command_at_open``)."""
        struct.pack_into("<H", self._bytes, PCI_COMMAND, command & COMMAND_WRITABLE)

    def read(self, offset: int, size: int) -> bytes:
        return bytes(self._bytes[offset : offset + size])

    def write(self, offset: int, data: bytes) -> None:
        before = self.command
        for i, byte in enumerate(data):
            at = offset + i
            if PCI_COMMAND <= at < PCI_COMMAND + 2:  # the rest is read-only
                keep = COMMAND_WRITABLE >> (8 * (at - PCI_COMMAND)) & 0xFF
                self._bytes[at] = byte & keep
        after = self.command
        if (before ^ after) & CMD_INTX_DISABLE:
            self._changed(bool(after & CMD_INTX_DISABLE))
