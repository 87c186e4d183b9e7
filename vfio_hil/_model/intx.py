"""INTx handlers (drivers/vfio/pci/vfio_pci_intrs.c, the INTx half)."""

from __future__ import annotations

import errno
import struct

from vfio_hil import _uapi as u
from vfio_hil._model.base import KernelOops, ModelBase
from vfio_hil._model.eventfds import EventfdRef
from vfio_hil._model.state import IRQ_NONE, IntxCtx

__all__ = ["IntxHandlers"]

_NONE = u.VFIO_IRQ_SET_DATA_NONE
_BOOL = u.VFIO_IRQ_SET_DATA_BOOL
_EVENTFD = u.VFIO_IRQ_SET_DATA_EVENTFD


def _s32(data: bytes) -> int:
    return int(struct.unpack_from("<i", data)[0])


class IntxHandlers(ModelBase):
    # --- primitives -----------------------------------------------------------

    def _intx_ctx(self) -> IntxCtx:
        assert self.state.intx is not None
        return self.state.intx

    def intx_handler_installed(self) -> bool:
        """Is vfio_intx_handler registered with request_irq()?"""
        if not self.is_intx():
            return False
        # Before 18c198c96a81 the IRQ was requested only while a trigger was set.
        return self.profile.persistent_intx or self._intx_ctx().trigger is not None

    # vfio_send_intx_eventfd()
    def send_intx_eventfd(self) -> None:
        if self.is_intx() and not self.state.virq_disabled:
            trigger = self._intx_ctx().trigger
            if trigger is not None:
                self.signal(trigger)
            elif not self.profile.persistent_intx:
                raise KernelOops(
                    "eventfd_signal(NULL): INTx loopback with no trigger (CVE-2024-26812)"
                )

    # __vfio_pci_intx_mask()
    def intx_mask(self) -> None:
        if not self.is_intx():
            if self.function.pci_2_3:
                self.set_dis_intx(True)
            return
        ctx = self._intx_ctx()
        if not ctx.masked:
            # pci_2_3: DisINTx in PCI_COMMAND; else disable_irq_nosync(): same effect here.
            self.set_dis_intx(True)
            ctx.masked = True

    # vfio_pci_intx_unmask_handler()
    def intx_unmask_handler(self) -> int:
        if not self.is_intx():
            if self.function.pci_2_3:
                self.set_dis_intx(False)
            return 0
        ctx = self._intx_ctx()
        ret = 0
        if ctx.masked and not self.state.virq_disabled:
            # pci_check_and_unmask_intx(): a still-pending line stays masked, and
            # the caller re-fires it.  Non-2.3 devices re-fire through the level
            # line instead; seen from user space the result is the same.
            if self.lines.intx_asserted:
                ret = 1
            else:
                self.set_dis_intx(False)
            ctx.masked = ret > 0
        return ret

    # vfio_pci_intx_unmask()
    def intx_unmask(self) -> None:
        if self.intx_unmask_handler() > 0:
            self.send_intx_eventfd()

    # The line as the IRQ core presents it: only an asserted, not DisINTx-masked
    # line reaches a requested handler; then vfio_intx_handler() runs.
    def service_intx(self) -> None:
        lines = self.lines
        if not lines.intx_asserted or lines.dis_intx:
            lines.intx_unseen = False  # the controller's input is low again
            return
        if not self.intx_handler_installed() or lines.intx_unseen:
            return
        # vfio_intx_handler(): unless ctx->masked, pci_check_and_mask_intx()
        # sets DisINTx, ctx->masked = true, and vfio_send_intx_eventfd().
        ctx = self._intx_ctx()
        if not ctx.masked:
            self.set_dis_intx(True)
            ctx.masked = True
            self.send_intx_eventfd()

    # vfio_intx_enable()
    def intx_enable(self, trigger: EventfdRef | None) -> int:
        if not self.is_irq_none():
            return -errno.EINVAL
        ctx = IntxCtx(trigger=trigger, masked=self.state.virq_disabled)
        self.state.intx = ctx
        self.state.irq_type = 0
        # pci_intx(pdev, !masked), then request_irq(): a pending line fires at
        # once, unless the platform lost the level while the pin was unrequested.
        self.set_dis_intx(ctx.masked)
        self.request_irq_level_check()
        self.service_intx()
        return 0

    def request_irq_level_check(self) -> None:
        """request_irq() activates the pin: has the controller seen the level?"""
        lines = self.lines
        if lines.intx_asserted and not lines.dis_intx and not self.function.intx_level_at_enable:
            lines.intx_unseen = True

    # vfio_intx_disable()
    def intx_disable(self) -> None:
        ctx = self._intx_ctx()
        self.put(ctx.unmask)  # vfio_virqfd_disable(&ctx->unmask)
        self.put(ctx.trigger)
        self.state.intx = None
        self.state.irq_type = IRQ_NONE

    # vfio_intx_set_signal(), since 18c198c96a81: swap, keep the handler
    def intx_set_signal(self, trigger: EventfdRef | None) -> int:
        ctx = self._intx_ctx()
        old, ctx.trigger = ctx.trigger, trigger
        self.put(old)
        return 0

    # vfio_intx_set_signal(fd), before 18c198c96a81: tear down, then look up
    def intx_set_signal_fd(self, fd: int) -> int:
        ctx = self._intx_ctx()
        old, ctx.trigger = ctx.trigger, None
        self.put(old)
        if fd < 0:
            return 0
        ref = self.eventfds.get(fd)
        if isinstance(ref, int):
            return ref
        ctx.trigger = ref
        self.request_irq_level_check()
        self.service_intx()
        return 0

    # --- SET_IRQS handlers ------------------------------------------------------

    # vfio_pci_set_intx_mask()
    def set_intx_mask(self, index: int, start: int, count: int, flags: int, data: bytes) -> int:
        if not self.is_intx() or start != 0 or count != 1:
            return -errno.EINVAL
        if flags & _NONE:
            self.intx_mask()
        elif flags & _BOOL:
            if data[0]:
                self.intx_mask()
        elif flags & _EVENTFD:
            return -errno.ENOTTY  # "XXX implement me" in every version
        return 0

    # vfio_pci_set_intx_unmask()
    def set_intx_unmask(self, index: int, start: int, count: int, flags: int, data: bytes) -> int:
        if not self.is_intx() or start != 0 or count != 1:
            return -errno.EINVAL
        if flags & _NONE:
            self.intx_unmask()
        elif flags & _BOOL:
            if data[0]:
                self.intx_unmask()
        elif flags & _EVENTFD:
            fd = _s32(data)
            if fd >= 0:
                return self.virqfd_enable_unmask(fd)
            self.virqfd_disable_unmask()
        return 0

    # vfio_virqfd_enable() with vfio_pci_intx_unmask_handler
    def virqfd_enable_unmask(self, fd: int) -> int:
        ref = self.eventfds.get(fd)  # fdget(): EBADF; eventfd_ctx_fileget(): EINVAL
        if isinstance(ref, int):
            return ref
        ctx = self._intx_ctx()
        if ctx.unmask is not None:
            self.put(ref)
            return -errno.EBUSY
        ctx.unmask = ref
        # An event already pending at registration runs the handler once.
        if self.eventfds.pending(ref):
            self.unmask_eventfd_fired()
        return 0

    # vfio_virqfd_disable()
    def virqfd_disable_unmask(self) -> None:
        ctx = self._intx_ctx()
        self.put(ctx.unmask)
        ctx.unmask = None

    # virqfd_wakeup() -> vfio_pci_intx_unmask_handler(), then the inject work
    def unmask_eventfd_fired(self) -> None:
        if self.is_intx() and self._intx_ctx().unmask is not None:
            if self.intx_unmask_handler() > 0:
                self.send_intx_eventfd()
            self.service_intx()

    # vfio_pci_set_intx_trigger()
    def set_intx_trigger(self, index: int, start: int, count: int, flags: int, data: bytes) -> int:
        if self.is_intx() and not count and flags & _NONE:
            self.intx_disable()
            return 0
        if not (self.is_intx() or self.is_irq_none()) or start != 0 or count != 1:
            return -errno.EINVAL
        if flags & _EVENTFD:
            if not self.profile.persistent_intx:
                return self._set_intx_trigger_eventfd_pre2024(_s32(data))
            fd = _s32(data)
            trigger: EventfdRef | None = None
            if fd >= 0:
                ref = self.eventfds.get(fd)  # looked up before any state change
                if isinstance(ref, int):
                    return ref
                trigger = ref
            ret = self.intx_set_signal(trigger) if self.is_intx() else self.intx_enable(trigger)
            if ret and trigger is not None:
                self.put(trigger)
            return ret
        if not self.is_intx():
            return -errno.EINVAL
        if flags & _NONE or (flags & _BOOL and data[0]):
            self.send_intx_eventfd()
        return 0

    # vfio_pci_set_intx_trigger(), EVENTFD branch before 18c198c96a81
    def _set_intx_trigger_eventfd_pre2024(self, fd: int) -> int:
        if self.is_intx():
            return self.intx_set_signal_fd(fd)
        self.state.intx = IntxCtx(masked=self.state.virq_disabled)
        self.state.irq_type = 0
        self.set_dis_intx(self.state.intx.masked)
        ret = self.intx_set_signal_fd(fd)
        if ret:
            self.intx_disable()
        return ret
