"""What every handler family shares: the device's state and its eventfds."""

from __future__ import annotations

from vfio_hil._model.eventfds import EventfdRef, EventfdTable
from vfio_hil._model.function import PciFunction
from vfio_hil._model.profile import KernelProfile
from vfio_hil._model.state import IRQ_NONE, DeviceLines, IrqState

__all__ = ["KernelOops", "ModelBase"]


class KernelOops(Exception):  # noqa: N818 - names the event, not an error code
    """The modelled kernel would crash here (e.g. CVE-2024-26812).

    Never a return value: a run against such a kernel must avoid the step.
    """


class ModelBase:
    """State and primitives; the handler mixins build on these."""

    def __init__(self, function: PciFunction, profile: KernelProfile, eventfds: EventfdTable):
        self.function = function
        self.profile = profile
        self.eventfds = eventfds
        self.state = IrqState()
        self.lines = DeviceLines()
        self.signalled: list[EventfdRef] | None = None  # recorded only inside apply()
        self._in_virqfd = False

    # eventfd_signal(): the eventfd's waiters run inside it, and a registered
    # INTx unmask eventfd's virqfd_wakeup() takes the count and unmasks, so a
    # trigger that shares that eventfd reads 0 (seen on 6.1.192 in the lab).
    def signal(self, ref: EventfdRef) -> None:
        if self.signalled is not None:
            self.signalled.append(ref)
        self.eventfds.signal(ref)
        intx = self.state.intx
        unmask = intx.unmask if intx is not None else None
        if unmask is None or self._in_virqfd or not self.eventfds.same(ref, unmask):
            return
        # One trigger as its own unmask eventfd loops in the kernel (the
        # re-fire wakes the virqfd again, from a workqueue) while the line is
        # up; the model stops after one round and leaves that count.
        self._in_virqfd = True
        try:
            self.eventfds.drain(unmask)
            self.unmask_eventfd_fired()
        finally:
            self._in_virqfd = False

    def unmask_eventfd_fired(self) -> None:
        """virqfd_wakeup() on the INTx unmask eventfd (IntxHandlers)."""
        raise NotImplementedError

    # eventfd_ctx_put()
    def put(self, ref: EventfdRef | None) -> None:
        if ref is not None:
            self.eventfds.put(ref)

    def set_dis_intx(self, disabled: bool) -> None:
        """Write the physical PCI_COMMAND.DisINTx (pci_intx())."""
        self.lines.dis_intx = disabled
        if disabled:
            self.lines.intx_unseen = False  # the controller's input drops

    def is_intx(self) -> bool:
        return self.state.irq_type == 0

    def is_irq_none(self) -> bool:
        return self.state.irq_type == IRQ_NONE

    @property
    def has_dyn_msix(self) -> bool:
        # vfio_pci_core_enable(): has_dyn_msix = pci_msix_can_alloc_dyn(pdev)
        return self.profile.dyn_ctx and self.function.dyn_msix and self.function.msix_vectors > 0

    def service_intx(self) -> None:
        """Deliver the INTx line if the device drives it and nothing masks it."""
        raise NotImplementedError
