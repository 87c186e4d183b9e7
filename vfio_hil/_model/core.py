"""The vfio-pci device model: ioctl entry points, dispatch, open and close.

``VfioPciModel`` answers ``VFIO_DEVICE_SET_IRQS`` and ``GET_IRQ_INFO`` as the
kernel's vfio-pci does for one ``PciFunction`` under one ``KernelProfile``.
Handlers return what the kernel returns: 0, a positive count, or -errno.
Subclass it and override one handler to make a behaviour variant.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

from vfio_hil import _uapi as u
from vfio_hil._irq import IrqInfo, IrqInfoFlag, IrqSet
from vfio_hil._model.eventfds import EventfdRef, EventfdTable
from vfio_hil._model.function import PciFunction
from vfio_hil._model.intx import IntxHandlers
from vfio_hil._model.msi import MsiHandlers
from vfio_hil._model.profile import KernelProfile
from vfio_hil._model.single import SingleTriggerHandlers
from vfio_hil._model.state import IRQ_NONE
from vfio_hil._model.validate import set_irqs_validate_and_prepare

__all__ = ["OBSERVER", "Observer", "Outcome", "VfioPciModel"]

Handler = Callable[[int, int, int, int, bytes], int]
_HEADER = struct.Struct("<5I")
_MASK = u.VFIO_IRQ_SET_ACTION_MASK
_UNMASK = u.VFIO_IRQ_SET_ACTION_UNMASK
_TRIGGER = u.VFIO_IRQ_SET_ACTION_TRIGGER


class Observer(Protocol):
    """Sees every request a model answers (vfio_hil._coverage records cells)."""

    def set_irqs(self, model: VfioPciModel, buf: bytes, answer: Callable[[bytes], int]) -> int:
        """Return ``answer(buf)``, looking at the model before and after."""

    def irq_info(self, model: VfioPciModel, index: int, answer: IrqInfo | int) -> None: ...


# The active observer, if any: one hook here sees every caller of the model
# (SimDevice, the lockstep twin, the plugin's mirror) without hooks in each.
OBSERVER: ContextVar[Observer | None] = ContextVar("vfio_hil_model_observer", default=None)


@dataclass(frozen=True)
class Outcome:
    """One step of the model: the ioctl's return (or -errno) and what it signalled."""

    ret: int
    signalled: tuple[EventfdRef, ...]


class VfioPciModel(IntxHandlers, MsiHandlers, SingleTriggerHandlers):
    """A deterministic model of one vfio-pci device's IRQ ioctls."""

    def __init__(self, function: PciFunction, profile: KernelProfile, eventfds: EventfdTable):
        super().__init__(function, profile, eventfds)

    # --- GET_IRQ_INFO ---------------------------------------------------------

    # vfio_pci_get_irq_count()
    def get_irq_count(self, index: int) -> int:
        fn = self.function
        if index == u.VFIO_PCI_INTX_IRQ_INDEX:
            return 1 if fn.intx_pin else 0
        if index == u.VFIO_PCI_MSI_IRQ_INDEX:
            return fn.msi_vectors
        if index == u.VFIO_PCI_MSIX_IRQ_INDEX:
            return fn.msix_vectors
        if index == u.VFIO_PCI_ERR_IRQ_INDEX:
            return 1 if self._has_err_irq() else 0
        if index == u.VFIO_PCI_REQ_IRQ_INDEX:
            return 1
        return 0

    def _has_err_irq(self) -> bool:
        return self.function.pcie or self.profile.err_without_pcie

    def get_irq_info(self, index: int) -> IrqInfo | int:
        answer = self._get_irq_info(index)
        observer = OBSERVER.get()
        if observer is not None:
            observer.irq_info(self, index, answer)
        return answer

    # vfio_pci_ioctl_get_irq_info()
    def _get_irq_info(self, index: int) -> IrqInfo | int:
        if not 0 <= index < u.VFIO_PCI_NUM_IRQS:
            return -errno.EINVAL
        # ERR on conventional PCI: gone with the PCIe check in 7.3
        if index == u.VFIO_PCI_ERR_IRQ_INDEX and not self._has_err_irq():
            return -errno.EINVAL
        flags = IrqInfoFlag.EVENTFD
        if index == u.VFIO_PCI_INTX_IRQ_INDEX:
            flags |= IrqInfoFlag.MASKABLE | IrqInfoFlag.AUTOMASKED
        elif not (index == u.VFIO_PCI_MSIX_IRQ_INDEX and self.has_dyn_msix):
            flags |= IrqInfoFlag.NORESIZE
        return IrqInfo(index, flags, self.get_irq_count(index))

    # --- SET_IRQS ---------------------------------------------------------------

    def ioctl_set_irqs(self, buf: bytes) -> int:
        observer = OBSERVER.get()
        if observer is None:
            return self._ioctl_set_irqs(buf)
        return observer.set_irqs(self, buf, self._ioctl_set_irqs)

    # vfio_pci_ioctl_set_irqs(): copy the header, validate, copy the payload
    def _ioctl_set_irqs(self, buf: bytes) -> int:
        if len(buf) < _HEADER.size:
            return -errno.EFAULT
        argsz, flags, index, start, count = _HEADER.unpack_from(buf)
        max_ = self.get_irq_count(index)
        size = set_irqs_validate_and_prepare(
            argsz, flags, index, start, count, max_, u.VFIO_PCI_NUM_IRQS
        )
        if size < 0:
            return size
        # Bytes past the caller's buffer read as zero: IrqSet.pack() pads them.
        data = bytes(buf[_HEADER.size : _HEADER.size + size]).ljust(size, b"\0")
        return self.set_irqs_ioctl(flags, index, start, count, data)

    # vfio_pci_set_irqs_ioctl(): pick the handler by index and single action
    def set_irqs_ioctl(self, flags: int, index: int, start: int, count: int, data: bytes) -> int:
        action = flags & u.VFIO_IRQ_SET_ACTION_TYPE_MASK
        handler = self.handler_for(index, action)
        if handler is None:
            return -errno.ENOTTY
        return handler(index, start, count, flags, data)

    def handler_for(self, index: int, action: int) -> Handler | None:
        if index == u.VFIO_PCI_INTX_IRQ_INDEX:
            return {
                _MASK: self.set_intx_mask,
                _UNMASK: self.set_intx_unmask,
                _TRIGGER: self.set_intx_trigger,
            }.get(action)
        if action != _TRIGGER:
            return None  # MSI/MSI-X masking is "not exported"; ERR/REQ trigger only
        if index in (u.VFIO_PCI_MSI_IRQ_INDEX, u.VFIO_PCI_MSIX_IRQ_INDEX):
            return self.set_msi_trigger
        if index == u.VFIO_PCI_ERR_IRQ_INDEX:
            return self.set_err_trigger if self._has_err_irq() else None
        if index == u.VFIO_PCI_REQ_IRQ_INDEX:
            return self.set_req_trigger
        return None

    def apply(self, request: IrqSet) -> Outcome:
        """Run one request; the return value and the eventfds it signalled."""
        self.signalled = []
        try:
            ret = self.ioctl_set_irqs(request.pack())
            return Outcome(ret, tuple(self.signalled))
        finally:
            self.signalled = None  # a SimDevice never calls apply(): keep nothing

    # --- device lifetime ----------------------------------------------------------

    # vfio_pci_core_enable(): the first open clears a stale physical DisINTx
    def open_device(self) -> None:
        if self.function.pci_2_3:
            self.set_dis_intx(False)

    # vfio_pci_core_close_device(): vfio_pci_core_disable() first (it disables
    # the enabled index with a count-0 TRIGGER), then the ERR/REQ triggers' put
    def close_device(self) -> None:
        state = self.state
        if state.irq_type != IRQ_NONE:
            self.set_irqs_ioctl(u.VFIO_IRQ_SET_DATA_NONE | _TRIGGER, state.irq_type, 0, 0, b"")
        self.put(state.err_trigger)
        self.put(state.req_trigger)
        state.err_trigger = state.req_trigger = None
        state.virq_disabled = False

    # vfio_config_init(): vconfig is the device's config as the last close's
    # pci_restore_state() left it, so every open shows the same PCI_COMMAND
    def command_at_open(self) -> int:
        return self.function.command_at_open

    # vfio_pci_ioctl_reset(): no IRQ context changes
    def reset(self) -> int:
        return 0 if self.function.can_reset else -errno.EINVAL

    # --- the device side and config space -------------------------------------------

    # vfio_basic_config_write(), PCI_COMMAND bit 10
    def write_intx_disable(self, disable: bool) -> None:
        state = self.state
        if disable and not state.virq_disabled:
            state.virq_disabled = True
            self.intx_mask()
        elif not disable and state.virq_disabled:
            state.virq_disabled = False
            self.intx_unmask()
            self.service_intx()

    def set_intx_level(self, asserted: bool) -> None:
        """The device drives (or releases) its INTx line."""
        self.lines.intx_asserted = asserted
        self.service_intx()

    def unmask_eventfd_released(self) -> None:
        """The last reference to the unmask eventfd closed (EPOLLHUP)."""
        if self.is_intx():
            self.virqfd_disable_unmask()
