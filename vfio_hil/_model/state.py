"""The per-device IRQ state vfio-pci keeps (``struct vfio_pci_core_device``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vfio_hil._model.eventfds import EventfdRef

__all__ = ["IRQ_NONE", "DeviceLines", "IntxCtx", "IrqState"]

# vfio-pci uses VFIO_PCI_NUM_IRQS (5) as "no IRQ type active".
IRQ_NONE = 5


@dataclass
class IntxCtx:
    """``struct vfio_pci_irq_ctx`` for INTx (exists while INTx is enabled)."""

    trigger: EventfdRef | None = None
    masked: bool = False
    unmask: EventfdRef | None = None  # the registered unmask virqfd


@dataclass
class IrqState:
    """vfio-pci's view: active type, contexts, triggers."""

    irq_type: int = IRQ_NONE
    intx: IntxCtx | None = None
    virq_disabled: bool = False  # guest-visible PCI_COMMAND.DisINTx
    # MSI/MSI-X: 6.1 has ctx[num_ctx]; >= 6.5 a set of allocated vectors.
    num_ctx: int = 0
    allocated: set[int] = field(default_factory=set)
    vectors: dict[int, EventfdRef] = field(default_factory=dict)
    err_trigger: EventfdRef | None = None
    req_trigger: EventfdRef | None = None


@dataclass
class DeviceLines:
    """The physical side that real interrupts need (section 10 of the spec)."""

    intx_asserted: bool = False  # the device drives its INTx line
    dis_intx: bool = False  # physical PCI_COMMAND.DisINTx
    # The interrupt controller missed the current assertion (see
    # PciFunction.intx_level_at_enable); it sees the line again once it drops.
    intx_unseen: bool = False
