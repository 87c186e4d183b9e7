"""The hardware the model stands in front of: one PCI function and its host."""

from __future__ import annotations

from dataclasses import dataclass

from vfio_hil._irq import _flag, _integer

__all__ = ["COMMAND_AT_OPEN", "PciFunction"]

COMMAND_AT_OPEN = 0x0103  # I/O | memory | SERR: what the lab's devices show at open
_INTX_DISABLE = 1 << 10

_MSI_SIZES = (0, 1, 2, 4, 8, 16, 32)


@dataclass(frozen=True)
class PciFunction:
    """What vfio-pci reads from the device and the platform.

    intx_pin:      the INTx pin register is non-zero (and the line is connected)
    msi_vectors:   MSI capability size (0 = no capability; 1, 2, 4 ... 32)
    msix_vectors:  MSI-X table size (0 = no capability; up to 2048)
    pcie:          a PCI Express function (decides the ERR index before 7.3)
    pci_2_3:       INTx can be masked with PCI_COMMAND.DisINTx (PCI 2.3)
    dyn_msix:      the platform can add MSI-X vectors after enable
                   (``pci_msix_can_alloc_dyn``; effective from 6.5)
    host_vectors:  how many host IRQ vectors an enable can get
    multi_msi:     MSI (not MSI-X) can have more than one vector: the
                   platform's MSI domain supports it (x86: only with
                   interrupt remapping; found without an IOMMU, xhci-msi)
    can_reset:     VFIO_DEVICE_RESET works (FLR, PM or bus reset)
    intx_level_at_enable:
                   a line the device asserted before INTx was enabled fires
                   once the IRQ is requested.  True on real IO-APICs; QEMU's
                   ignores a level that rose while the pin was masked in edge
                   mode (the state Linux leaves an unrequested pin in), so its
                   devices need False.
    command_at_open:
                   PCI_COMMAND as every open shows it: what firmware and
                   pci_enable_device() left, copied by vfio_config_init() and
                   put back by pci_restore_state() at the last close.  SeaBIOS
                   (the lab) leaves I/O, memory and SERR on and bus mastering
                   off: 0x0103 on edu and virtio, on 6.1, 6.12 and 7.2.
    """

    intx_pin: bool = True
    msi_vectors: int = 0
    msix_vectors: int = 0
    pcie: bool = False
    pci_2_3: bool = True
    dyn_msix: bool = False
    host_vectors: int = 4096
    multi_msi: bool = True
    can_reset: bool = True
    intx_level_at_enable: bool = True
    command_at_open: int = COMMAND_AT_OPEN

    def __post_init__(self) -> None:
        # Types first: "false" is a true pcie and 8.5 vectors a count no
        # GET_IRQ_INFO reports; then each field's range.
        for name in _FLAGS:
            _flag(name, getattr(self, name))
        for name in _NUMBERS:
            _integer(name, getattr(self, name))
        if self.msi_vectors not in _MSI_SIZES:
            raise ValueError(
                f"msi_vectors={self.msi_vectors}: an MSI capability has 1, 2, 4, 8, 16 "
                "or 32 vectors (0 for none)"
            )
        if not 0 <= self.msix_vectors <= 2048:
            raise ValueError(f"msix_vectors={self.msix_vectors}: an MSI-X table has 0..2048")
        if not 0 <= self.command_at_open <= 0xFFFF or self.command_at_open & _INTX_DISABLE:
            raise ValueError(
                f"command_at_open={self.command_at_open:#x}: a 16-bit PCI_COMMAND "
                "without INTx-disable (bit 10), which no open shows"
            )
        if self.host_vectors < 0:
            raise ValueError(f"host_vectors={self.host_vectors} must not be negative")


_FLAGS = (
    *("intx_pin", "pcie", "pci_2_3", "dyn_msix", "can_reset", "intx_level_at_enable"),
    "multi_msi",
)
_NUMBERS = ("msi_vectors", "msix_vectors", "host_vectors", "command_at_open")
