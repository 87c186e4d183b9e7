"""``ModelMirror``: the plugin's model of a device, kept in step with it.

The model is the device's twin (``twin_of``: the one twin builder), fed every
request, reset, reopen and stimulus a test sends through ``TrackedDevice``.
The twin must not signal the test's eventfds (that would count twice), so
each eventfd of the test gets a twin eventfd of its own, found by its
eventfd-id; ``mirror.take(efd)`` reads that one.  After a device-raised
interrupt the device side is read with the lockstep timing policy.
"""

from __future__ import annotations

import contextlib
import errno
import struct
from collections.abc import Callable, Sequence
from typing import Any

from vfio_hil import _uapi as u
from vfio_hil._device import Device, DeviceInfo, Platform, RegionInfo, Stimulus
from vfio_hil._errors import VfioError, errno_name
from vfio_hil._eventfd import EventFd
from vfio_hil._irq import IrqInfo, IrqSet
from vfio_hil._lockstep.timing import Timing
from vfio_hil._lockstep.twin import twin_of
from vfio_hil._model import KernelProfile, VfioPciModel
from vfio_hil._sim.device import SimDevice
from vfio_hil._sim.eventfds import _eventfd_id

__all__ = ["ModelMirror", "TrackedDevice"]

_EVENTFD = u.VFIO_IRQ_SET_DATA_EVENTFD


class ModelMirror:
    """The model's view of one device; ``take(efd)`` is what it expects read."""

    @classmethod
    def of(cls, device: Device) -> ModelMirror:
        """The model of ``device``: its twin, on the device's kernel."""
        return cls(twin_of(device))

    def __init__(self, twin: SimDevice, timing: Timing | None = None) -> None:
        self.twin = twin
        self.timing = timing or Timing()
        self.last: int | str | None = None  # the model's last answer (value or errno name)
        self.raised = False  # the device has raised and not cleared everything
        self._shadows: dict[str, EventFd] = {}  # the test's eventfd-id -> the twin's eventfd
        # How an fd number's eventfd is told apart: this process's /proc, or
        # (a device behind an agent) the agent's.
        self.identify: Callable[[int], str] = _eventfd_id

    @property
    def model(self) -> VfioPciModel:
        return self.twin.model

    def _shadow(self, fd: int) -> int:
        """The twin's stand-in for the test's fd: its own eventfd for an eventfd,
        the same number for anything else (closed, -1, not an eventfd)."""
        identity = self.identify(fd) if fd >= 0 else ""
        if identity in ("", "?"):
            return fd
        if identity not in self._shadows:
            self._shadows[identity] = EventFd()
        return self._shadows[identity].fd

    def _translate(self, request: IrqSet) -> IrqSet:
        if not request.flags & _EVENTFD or not request.data or len(request.data) % 4:
            return request
        fds = struct.unpack(f"<{len(request.data) // 4}i", request.data)
        data = struct.pack(f"<{len(fds)}i", *(self._shadow(fd) for fd in fds))
        return IrqSet.raw(
            request.flags, request.index, request.start, request.count, data, request.argsz
        )

    def apply(self, request: IrqSet) -> int:
        """Send ``request`` to the twin; its return value (or -errno)."""
        try:
            ret = self.twin.set_irqs(self._translate(request))
        except VfioError as err:
            code = err.errno or errno.EIO
            self.last = errno_name(code)
            return -code
        self.last = ret
        return ret

    def take(self, efd: EventFd) -> int:
        """How many signals the model expects on ``efd`` since the last take."""
        self.twin.quiesce()
        shadow = self._shadows.get(self.identify(efd.fd))
        return shadow.read() if shadow is not None else 0

    def assert_matches(self, fds: Sequence[EventFd]) -> None:
        """Read every eventfd and require what the model expects (both reset)."""
        want = [self.take(efd) for efd in fds]
        got = self.timing.read(lambda: [efd.read() for efd in fds], want, self.raised)
        if got != want:
            rows = "\n".join(
                f"  eventfd {i}: model expects {w}, read {g}{'' if w == g else '   <--'}"
                for i, (w, g) in enumerate(zip(want, got, strict=True))
            )
            raise AssertionError(f"device and model disagree:\n{rows}")

    def close(self) -> None:
        self.twin.close()
        for shadow in self._shadows.values():
            shadow.close()
        self._shadows.clear()


class _BothStimulus:
    """The device's stimulus, mirrored on the twin's (edu's registers on both)."""

    def __init__(self, device: Stimulus, twin: Stimulus, mirror: ModelMirror) -> None:
        self._device = device
        self._twin = twin
        self._mirror = mirror

    def raise_irq(self, value: int = 1) -> None:
        self._twin.raise_irq(value)
        self._device.raise_irq(value)
        self._mirror.raised = True

    def clear_irq(self, value: int = 0xFFFFFFFF) -> None:
        self._twin.clear_irq(value)
        self._device.clear_irq(value)
        if value & 0xFFFFFFFF == 0xFFFFFFFF:
            self._mirror.raised = False

    def status(self) -> int:
        return self._device.status()


class TrackedDevice:
    """A Device whose every request, reset, reopen and raise the mirror sees too."""

    def __init__(self, device: Device, mirror: ModelMirror) -> None:
        self._device = device
        identify = getattr(device, "eventfd_id", None)  # a RemoteDevice's eventfds are remote
        if callable(identify):
            mirror.identify = identify
        self.mirror = mirror
        twin_stimulus = mirror.twin.stimulus
        device_stimulus = device.stimulus
        self._stimulus: Stimulus | None = device_stimulus
        if device_stimulus is not None and twin_stimulus is not None:
            self._stimulus = _BothStimulus(device_stimulus, twin_stimulus, mirror)

    def set_irqs(self, irqset: IrqSet) -> int:
        expected = self.mirror.apply(irqset)
        try:
            got = self._device.set_irqs(irqset)
        except VfioError:
            if expected >= 0:
                self.mirror.last = f"{self.mirror.last} (the device failed)"
            raise
        return got

    def reset(self) -> None:
        with contextlib.suppress(VfioError):  # the device's own answer is the test's
            self.mirror.twin.reset()
        self._device.reset()

    def reopen(self) -> TrackedDevice:
        """Reopen the device; the model sees the last close and a new open too."""
        self.mirror.twin.reopen()
        self._device = self._device.reopen()
        return self

    def quiesce(self) -> bool:
        self.mirror.twin.quiesce()
        return self._device.quiesce()

    @property
    def kernel(self) -> KernelProfile:
        return self._device.kernel

    @property
    def platform(self) -> Platform:
        return self._device.platform

    @property
    def name(self) -> str:
        return self._device.name

    @property
    def stimulus(self) -> Stimulus | None:
        return self._stimulus

    def info(self) -> DeviceInfo:
        return self._device.info()

    def irq_info(self, index: int) -> IrqInfo:
        # The model is asked too, so a coverage run counts the call; the
        # device's own answer is the test's.
        with contextlib.suppress(VfioError):
            self.mirror.twin.irq_info(index)
        return self._device.irq_info(index)

    def region_info(self, index: int) -> RegionInfo:
        return self._device.region_info(index)

    def read_region(self, index: int, offset: int, size: int) -> bytes:
        return self._device.read_region(index, offset, size)

    def write_region(self, index: int, offset: int, data: bytes) -> None:
        # DisINTx in config space, edu's registers: the model must see them; the
        # device's own answer is the test's.
        with contextlib.suppress(VfioError):
            self.mirror.twin.write_region(index, offset, data)
        self._device.write_region(index, offset, data)

    def close(self) -> None:
        self._device.close()

    def __enter__(self) -> TrackedDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._device, name)
