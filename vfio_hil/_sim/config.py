"""The simulated function's virtual config space (region 7).

Only what SET_IRQS semantics touch is live: PCI_COMMAND (memory, bus master
and INTx-disable, which vfio virtualizes as ``virq_disabled``); the rest is
a plain header with vendor, device, class and interrupt pin.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

__all__ = ["CMD_INTX_DISABLE", "CMD_MASTER", "CMD_MEMORY", "PCI_COMMAND", "ConfigSpace"]

PCI_COMMAND = 0x04
CMD_MEMORY = 1 << 1
CMD_MASTER = 1 << 2
CMD_INTX_DISABLE = 1 << 10
_PCI_INTERRUPT_PIN = 0x3D
_PCI_STATUS = 0x06
_STATUS_CAP_LIST = 0x10
_PCI_CAPABILITY_LIST = 0x34
_FIRST_CAP = 0x40
_CAP_STRIDE = 0x40  # room for the largest (PCIe, 0x3c bytes)
CAP_ID_MSI = 0x05
CAP_ID_EXP = 0x10
CAP_ID_MSIX = 0x11


class ConfigSpace:
    def __init__(
        self,
        vendor: int,
        device: int,
        size: int,
        intx_pin: bool,
        intx_disable_changed: Callable[[bool], None],
        capabilities: tuple[int, ...] = (),
    ) -> None:
        self.size = size
        self._bytes = bytearray(size)
        struct.pack_into("<HH", self._bytes, 0, vendor, device)
        self._bytes[_PCI_INTERRUPT_PIN] = 1 if intx_pin else 0
        self._chain(capabilities)
        self._changed = intx_disable_changed

    def _chain(self, capabilities: tuple[int, ...]) -> None:
        """Link capability IDs (PCIe 0x10, MSI 0x05, MSI-X 0x11) from 0x40 on."""
        if not capabilities:
            return
        self._bytes[_PCI_STATUS] |= _STATUS_CAP_LIST
        self._bytes[_PCI_CAPABILITY_LIST] = _FIRST_CAP
        for n, cap_id in enumerate(capabilities):
            at = _FIRST_CAP + n * _CAP_STRIDE
            last = n == len(capabilities) - 1
            self._bytes[at] = cap_id
            self._bytes[at + 1] = 0 if last else at + _CAP_STRIDE

    @property
    def command(self) -> int:
        return int(struct.unpack_from("<H", self._bytes, PCI_COMMAND)[0])

    def reset_command(self) -> None:
        struct.pack_into("<H", self._bytes, PCI_COMMAND, 0)

    def read(self, offset: int, size: int) -> bytes:
        return bytes(self._bytes[offset : offset + size])

    def write(self, offset: int, data: bytes) -> None:
        before = self.command
        for i, byte in enumerate(data):
            if PCI_COMMAND <= offset + i < PCI_COMMAND + 2:  # the rest is read-only
                self._bytes[offset + i] = byte
        after = self.command
        if (before ^ after) & CMD_INTX_DISABLE:
            self._changed(bool(after & CMD_INTX_DISABLE))
