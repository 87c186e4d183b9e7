"""QEMU's ``edu`` device, the registers of BAR0 that raise interrupts.

Mirrors hw/misc/edu.c: a write to 0x60 ORs into the interrupt status (0x24)
and raises (MSI vector 0 when MSI is on, else the INTx line); a write to
0x64 clears bits and drops INTx when none is left and MSI is off.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from vfio_hil._hw import EDU_ID, EDU_IRQ_ACK, EDU_IRQ_RAISE, EDU_IRQ_STATUS, EDU_LIVENESS

__all__ = ["EDU_BAR0_SIZE", "EduRegisters"]

EDU_BAR0_SIZE = 1 << 20


class EduRegisters:
    def __init__(
        self,
        msi_enabled: Callable[[], bool],
        send_msi: Callable[[int], None],
        set_intx: Callable[[bool], None],
    ) -> None:
        self.irq_status = 0
        self._liveness = 0
        self._msi_enabled = msi_enabled
        self._send_msi = send_msi
        self._set_intx = set_intx

    def read32(self, offset: int) -> int:
        if offset == EDU_ID:
            return 0x010000ED
        if offset == EDU_LIVENESS:
            return self._liveness
        if offset == EDU_IRQ_STATUS:
            return self.irq_status
        return 0xFFFFFFFF

    def write32(self, offset: int, value: int) -> None:
        if offset == EDU_LIVENESS:
            self._liveness = ~value & 0xFFFFFFFF
        elif offset == EDU_IRQ_RAISE:
            self.raise_irq(value)
        elif offset == EDU_IRQ_ACK:
            self.lower_irq(value)

    # edu_raise_irq()
    def raise_irq(self, value: int) -> None:
        self.irq_status |= value
        if self.irq_status:
            if self._msi_enabled():
                self._send_msi(0)
            else:
                self._set_intx(True)

    # edu_lower_irq()
    def lower_irq(self, value: int) -> None:
        self.irq_status &= ~value & 0xFFFFFFFF
        if not self.irq_status and not self._msi_enabled():
            self._set_intx(False)

    def read(self, offset: int, size: int) -> bytes:
        if size != 4 or offset % 4:
            return b"\xff" * size  # edu answers aligned 32-bit accesses here
        return struct.pack("<I", self.read32(offset))

    def write(self, offset: int, data: bytes) -> None:
        if len(data) == 4 and offset % 4 == 0:
            self.write32(offset, struct.unpack("<I", data)[0])
