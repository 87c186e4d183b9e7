"""Behaviour mutants: plausible vfio-pci regressions, as ``VfioPciModel`` subclasses.

Each overrides one handler (the SimDevice extension point, docs/simdevice.md)
to behave like a real historical bug or a regression someone could plausibly
write.  ``MUTANTS`` lists them with the simulated device and kernel that
expose them; ``vfio_hil._bench.mutants`` measures how fast the state machine
finds each one.
"""

from __future__ import annotations

import errno
import struct
from collections.abc import Callable
from dataclasses import dataclass

from vfio_hil import _uapi as u
from vfio_hil._irq import IrqInfo, IrqInfoFlag
from vfio_hil._model import EventfdRef, VfioPciModel
from vfio_hil._model.state import IntxCtx
from vfio_hil._sim.device import SimDevice

__all__ = ["MUTANTS", "Mutant"]

_NONE = u.VFIO_IRQ_SET_DATA_NONE
_BOOL = u.VFIO_IRQ_SET_DATA_BOOL
_EVENTFD = u.VFIO_IRQ_SET_DATA_EVENTFD
_U32 = 0xFFFFFFFF
_HEADER = struct.Struct("<5I")
_SIZES = {_NONE: 0, _BOOL: 1, _EVENTFD: 4}


class _LaxValidation(VfioPciModel):
    """Base of the validation mutants: ``range_ok`` replaces V1's guard and V2."""

    def range_ok(self, start: int, count: int, num_irqs: int) -> bool:
        raise NotImplementedError

    # vfio_pci_ioctl_set_irqs() with a rewritten vfio_set_irqs_validate_and_prepare()
    def ioctl_set_irqs(self, buf: bytes) -> int:
        argsz, flags, index, start, count = _HEADER.unpack_from(buf)
        size = _SIZES.get(flags & u.VFIO_IRQ_SET_DATA_TYPE_MASK)
        if (
            argsz < _HEADER.size
            or index >= u.VFIO_PCI_NUM_IRQS
            or flags & ~0x3F
            or size is None
            or not self.range_ok(start, count, self.get_irq_count(index))
            or (size and argsz - _HEADER.size < count * size)
        ):
            return -errno.EINVAL
        data = bytes(buf[_HEADER.size : _HEADER.size + count * size]).ljust(count * size, b"\0")
        return self.set_irqs_ioctl(flags, index, start, count, data)


class StartCountOverflow(_LaxValidation):
    """start + count wraps in u32 and only the sum is checked (libvfio-user #790)."""

    def range_ok(self, start: int, count: int, num_irqs: int) -> bool:
        return (start + count) & _U32 <= num_irqs


class RangeOffByOne(_LaxValidation):
    """The range check allows one sub-index past the end (``>`` became ``> n + 1``)."""

    def range_ok(self, start: int, count: int, num_irqs: int) -> bool:
        return count < _U32 - start and start < num_irqs and start + count <= num_irqs + 1


class LoopbackWithoutTriggerFails(VfioPciModel):
    """INTx loopback after a -1 de-assign returns EINVAL (CVE-2024-26812 class:
    the NULL trigger handled as an error instead of a silent no-op)."""

    def set_intx_trigger(self, index: int, start: int, count: int, flags: int, data: bytes) -> int:
        intx = self.state.intx
        no_trigger = self.is_intx() and intx is not None and intx.trigger is None
        if no_trigger and count == 1 and (flags & _NONE or (flags & _BOOL and data[0])):
            return -errno.EINVAL
        return super().set_intx_trigger(index, start, count, flags, data)


class NoneWithCountDisables(VfioPciModel):
    """MSI/MSI-X DATA_NONE with count > 0 is taken as teardown (count ignored)."""

    def set_msi_trigger(self, index: int, start: int, count: int, flags: int, data: bytes) -> int:
        if self.irq_is(index) and flags & _NONE:
            count = 0
        return super().set_msi_trigger(index, start, count, flags, data)


class BoolIgnoresSparseness(VfioPciModel):
    """MSI/MSI-X DATA_BOOL loopback signals every vector, set or not."""

    def set_msi_trigger(self, index: int, start: int, count: int, flags: int, data: bytes) -> int:
        if flags & _BOOL:
            flags = flags & ~_BOOL | _NONE
        return super().set_msi_trigger(index, start, count, flags, data)


class UnmaskNoRefire(VfioPciModel):
    """UNMASK forgets an INTx line that is still asserted: no re-fire."""

    def intx_unmask_handler(self) -> int:
        super().intx_unmask_handler()
        return 0


class PartialFailureRollsBack(VfioPciModel):
    """A bad fd in an MSI/MSI-X eventfd array leaves every vector as it was
    (rolled back), where the kernel unassigns the vectors up to the bad one."""

    def msi_set_block(self, start: int, count: int, data: bytes | None, msix: bool) -> int:
        if data is not None:
            for fd in struct.unpack_from(f"<{count}i", data):
                if fd >= 0:
                    ref = self.eventfds.get(fd)
                    if isinstance(ref, int):
                        return ref
                    self.put(ref)
        return super().msi_set_block(start, count, data, msix)


class FailedSwapDestroysOld(VfioPciModel):
    """An INTx swap to a bad fd drops the old trigger (the pre-2024 order)."""

    def set_intx_trigger(self, index: int, start: int, count: int, flags: int, data: bytes) -> int:
        ret = super().set_intx_trigger(index, start, count, flags, data)
        intx = self.state.intx
        if ret < 0 and flags & _EVENTFD and intx is not None and count == 1:
            self.put(intx.trigger)
            intx.trigger = None
        return ret


class ErrReqAcceptNegativeFd(VfioPciModel):
    """ERR/REQ DATA_EVENTFD with fd <= -2 is a no-op again (98693e0897f7 reverted)."""

    def set_ctx_trigger_single(
        self, trigger: EventfdRef | None, count: int, flags: int, data: bytes
    ) -> tuple[int, EventfdRef | None]:
        if flags & _EVENTFD and count and struct.unpack_from("<i", data)[0] <= -2:
            return 0, trigger
        return super().set_ctx_trigger_single(trigger, count, flags, data)


class MaskBlocksLoopback(VfioPciModel):
    """A user mask also drops INTx loopback (only DisINTx should)."""

    def send_intx_eventfd(self) -> None:
        intx = self.state.intx
        if intx is not None and intx.masked:
            return
        super().send_intx_eventfd()


class DisableKeepsErrTrigger(VfioPciModel):
    """ERR DATA_NONE count 0 (disable) leaves the trigger in place."""

    def set_err_trigger(self, index: int, start: int, count: int, flags: int, data: bytes) -> int:
        if flags & _NONE and not count and self.state.err_trigger is not None:
            return 0
        return super().set_err_trigger(index, start, count, flags, data)


class MsixEnableIgnoresStart(VfioPciModel):
    """Enabling MSI-X assigns the fds from vector 0, whatever ``start`` says."""

    def set_msi_trigger(self, index: int, start: int, count: int, flags: int, data: bytes) -> int:
        if flags & _EVENTFD and self.is_irq_none() and index == u.VFIO_PCI_MSIX_IRQ_INDEX:
            start = 0
        return super().set_msi_trigger(index, start, count, flags, data)


class SecondUnmaskEventfdReplaces(VfioPciModel):
    """A second INTx unmask eventfd replaces the first instead of EBUSY."""

    def virqfd_enable_unmask(self, fd: int) -> int:
        intx = self.state.intx
        if intx is None or intx.unmask is None:
            return super().virqfd_enable_unmask(fd)
        old, intx.unmask = intx.unmask, None
        ret = super().virqfd_enable_unmask(fd)
        if ret:
            intx.unmask = old  # a failed lookup keeps the old one
        else:
            self.put(old)
        return ret


class DisIntxIgnoredAtEnable(VfioPciModel):
    """INTx enabled while DisINTx is set starts unmasked ("INTx disable
    consistency", spec 12.7): a device interrupt gets through."""

    def intx_enable(self, trigger: EventfdRef | None) -> int:
        if not self.is_irq_none():
            return -errno.EINVAL
        self.state.intx = IntxCtx(trigger=trigger, masked=False)
        self.state.irq_type = u.VFIO_PCI_INTX_IRQ_INDEX
        self.set_dis_intx(False)
        self.request_irq_level_check()
        self.service_intx()
        return 0


class InfoNoresizeAlways(VfioPciModel):
    """GET_IRQ_INFO keeps NORESIZE on MSI-X although the device can grow it
    (the flag's dynamic-MSI-X condition lost: a kernel regression user space
    sees only in the flags)."""

    def get_irq_info(self, index: int) -> IrqInfo | int:
        info = super().get_irq_info(index)
        if isinstance(info, IrqInfo) and index == u.VFIO_PCI_MSIX_IRQ_INDEX:
            return IrqInfo(index, info.flags | IrqInfoFlag.NORESIZE, info.count)
        return info


class InfoMsixCountPlusOne(VfioPciModel):
    """GET_IRQ_INFO reports one MSI-X vector more than SET_IRQS accepts (the
    table size read as N instead of N-1+1: only the reported count is off)."""

    def get_irq_info(self, index: int) -> IrqInfo | int:
        info = super().get_irq_info(index)
        if isinstance(info, IrqInfo) and index == u.VFIO_PCI_MSIX_IRQ_INDEX and info.count:
            return IrqInfo(index, info.flags, info.count + 1)
        return info


class PendingUnmaskIgnored(VfioPciModel):
    """An unmask eventfd that holds a count when it is registered does nothing
    until the next write (vfio_virqfd_enable()'s initial poll lost)."""

    def virqfd_enable_unmask(self, fd: int) -> int:
        ref = self.eventfds.get(fd)
        if isinstance(ref, int):
            return ref
        ctx = self._intx_ctx()
        if ctx.unmask is not None:
            self.put(ref)
            return -errno.EBUSY
        ctx.unmask = ref
        return 0


class DisableNeedsStartZero(VfioPciModel):
    """MSI/MSI-X TRIGGER|NONE count 0 disables only with start 0; any other
    start is taken as a loopback of nothing (the kernel looks at count only)."""

    def set_msi_trigger(self, index: int, start: int, count: int, flags: int, data: bytes) -> int:
        if self.irq_is(index) and not count and flags & _NONE and start:
            return 0
        return super().set_msi_trigger(index, start, count, flags, data)


class BoolOnlyOne(VfioPciModel):
    """MSI/MSI-X DATA_BOOL signals a vector only for the byte 1 (``== 1``
    instead of non-zero: 0x80 and 0xff are ignored)."""

    def set_msi_trigger(self, index: int, start: int, count: int, flags: int, data: bytes) -> int:
        if flags & _BOOL:
            data = bytes(1 if b == 1 else 0 for b in data)
        return super().set_msi_trigger(index, start, count, flags, data)


class ResetTearsDownInterrupts(VfioPciModel):
    """VFIO_DEVICE_RESET disables the enabled index, as a close would; the
    kernel leaves every IRQ context alone, so the device keeps triggers the
    model no longer knows: state only the device has."""

    def reset(self) -> int:
        ret = super().reset()
        if ret == 0 and self.state.irq_type < u.VFIO_PCI_ERR_IRQ_INDEX:
            self.set_irqs_ioctl(
                _NONE | u.VFIO_IRQ_SET_ACTION_TRIGGER, self.state.irq_type, 0, 0, b""
            )
        return ret


class CommandZeroAtOpen(VfioPciModel):
    """An open shows PCI_COMMAND 0 (memory decoding off: a BAR write gets EIO)
    instead of the device's own, as the SimDevice did before 2026-12."""

    def command_at_open(self) -> int:
        return 0


class DisIntxClearNoDelivery(VfioPciModel):
    """Clearing INTx-disable while the line is asserted delivers nothing (the
    re-check of the line after vfio_basic_config_write() unmasks is lost)."""

    def write_intx_disable(self, disable: bool) -> None:
        state = self.state
        if not disable and state.virq_disabled:
            state.virq_disabled = False
            return
        super().write_intx_disable(disable)


@dataclass(frozen=True)
class Mutant:
    """A mutant, what it imitates, and the simulated device that exposes it."""

    name: str
    model: type[VfioPciModel]
    origin: str
    preset: str = "virtio_msix"  # "edu" (INTx, MSI, a stimulus) or "virtio_msix"
    kernel: str = "6.12"

    def device(self, model: type[VfioPciModel] = VfioPciModel) -> SimDevice:
        """The mutant's device, with ``model`` answering (default: the reference)."""
        make: Callable[..., SimDevice] = SimDevice.edu if self.preset == "edu" else _virtio_msix_8
        return make(kernel=self.kernel, model=model)


def _virtio_msix_8(**kw: object) -> SimDevice:
    return SimDevice.virtio_msix(vectors=8, **kw)  # type: ignore[arg-type]


MUTANTS: tuple[Mutant, ...] = (
    Mutant("loopback-no-trigger-einval", LoopbackWithoutTriggerFails, "CVE-2024-26812 class"),
    Mutant("start-count-overflow", StartCountOverflow, "libvfio-user #790; CVE-2016-9083"),
    Mutant("none-count-disables", NoneWithCountDisables, "plausible regression"),
    Mutant("bool-ignores-sparseness", BoolIgnoresSparseness, "docs/simdevice.md example"),
    Mutant("unmask-no-refire", UnmaskNoRefire, "spec 10 (pci_2_3 re-fire)", "edu"),
    Mutant("partial-failure-rolled-back", PartialFailureRollsBack, "spec 12.10 (unwind)"),
    Mutant("failed-swap-destroys-old", FailedSwapDestroysOld, "pre-18c198c96a81 order"),
    Mutant("err-req-accept-fd-minus-2", ErrReqAcceptNegativeFd, "98693e0897f7 reverted"),
    Mutant("range-off-by-one", RangeOffByOne, "plausible regression"),
    Mutant("mask-blocks-loopback", MaskBlocksLoopback, "plausible regression"),
    Mutant("disable-keeps-err-trigger", DisableKeepsErrTrigger, "1518ac272e78 class"),
    Mutant("msix-enable-ignores-start", MsixEnableIgnoresStart, "plausible regression"),
    Mutant("second-unmask-eventfd-replaces", SecondUnmaskEventfdReplaces, "spec 7.2 EBUSY"),
    Mutant("disintx-ignored-at-enable", DisIntxIgnoredAtEnable, "spec 12.7", "edu"),
    Mutant("info-noresize-always", InfoNoresizeAlways, "GET_IRQ_INFO flags regression"),
    Mutant("info-msix-count-plus-one", InfoMsixCountPlusOne, "GET_IRQ_INFO count regression"),
    Mutant("pending-unmask-ignored", PendingUnmaskIgnored, "vfio_virqfd_enable() poll", "edu"),
    Mutant("disable-needs-start-zero", DisableNeedsStartZero, "count 0, start > 0"),
    Mutant("bool-only-one", BoolOnlyOne, "DATA_BOOL high bytes"),
    Mutant("reset-tears-down-interrupts", ResetTearsDownInterrupts, "device-only state"),
    Mutant("command-zero-at-open", CommandZeroAtOpen, "config at open (SimDevice before)", "edu"),
    Mutant("disintx-clear-no-delivery", DisIntxClearNoDelivery, "plausible regression", "edu"),
)
