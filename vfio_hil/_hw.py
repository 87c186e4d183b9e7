"""Register maps every layer shares: PCI config space and QEMU edu's BAR0.

One place for the offsets and bits, so the real device's stimulus, the
simulated function, the lockstep engine and the C reproducer cannot drift.
"""

from __future__ import annotations

__all__ = [
    "CAP_ID_EXP",
    "CAP_ID_MSI",
    "CAP_ID_MSIX",
    "CMD_INTX_DISABLE",
    "CMD_IO",
    "CMD_MASTER",
    "CMD_MEMORY",
    "CMD_SERR",
    "EDU_DEVICE",
    "EDU_ID",
    "EDU_IRQ_ACK",
    "EDU_IRQ_RAISE",
    "EDU_IRQ_STATUS",
    "EDU_LIVENESS",
    "EDU_VENDOR",
    "PCI_CAPABILITY_LIST",
    "PCI_COMMAND",
    "PCI_INTERRUPT_PIN",
    "PCI_STATUS",
    "STATUS_CAP_LIST",
]

# PCI configuration space (include/uapi/linux/pci_regs.h)
PCI_COMMAND = 0x04
PCI_STATUS = 0x06
PCI_CAPABILITY_LIST = 0x34
PCI_INTERRUPT_PIN = 0x3D
CMD_IO = 1 << 0
CMD_MEMORY = 1 << 1
CMD_MASTER = 1 << 2
CMD_SERR = 1 << 8
CMD_INTX_DISABLE = 1 << 10
STATUS_CAP_LIST = 1 << 4
CAP_ID_MSI = 0x05
CAP_ID_EXP = 0x10
CAP_ID_MSIX = 0x11

# QEMU's edu (hw/misc/edu.c), BAR0, 32-bit registers
EDU_VENDOR = 0x1234
EDU_DEVICE = 0x11E8
EDU_ID = 0x00  # reads 0x010000ed
EDU_LIVENESS = 0x04  # reads back the inverse of what was written
EDU_IRQ_STATUS = 0x24
EDU_IRQ_RAISE = 0x60  # status |= value, then MSI vector 0 or INTx
EDU_IRQ_ACK = 0x64  # status &= ~value; INTx drops at 0
