"""``ModelMirror``: the model of a device, kept in step with the real one.

Every request sent through a ``TrackedDevice`` goes to the device and to
the model.  The model does not signal the test's eventfds (that would count
twice); it counts, per eventfd, what the kernel should have signalled, so a
test can compare ``efd.read()`` with ``mirror.take(efd)``.
"""

from __future__ import annotations

import errno
from collections import Counter
from collections.abc import Sequence
from typing import Any

from vfio_hil._device import Device, DeviceInfo, Platform, RegionInfo, Stimulus
from vfio_hil._errors import VfioError
from vfio_hil._eventfd import EventFd
from vfio_hil._irq import IrqInfo, IrqSet
from vfio_hil._lockstep.twin import function_of
from vfio_hil._model import KernelProfile, PciFunction, VfioPciModel
from vfio_hil._model.state import IrqState
from vfio_hil._sim.eventfds import RealEventfds, _eventfd_id

__all__ = ["ModelMirror", "TrackedDevice"]


class _Ref:
    """A model reference to one user eventfd, known by its eventfd-id."""

    __slots__ = ("identity",)

    def __init__(self, identity: str) -> None:
        self.identity = identity


class _CountingRealEventfds:
    """Checks fds like the kernel (via RealEventfds' rules); counts signals."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._checker = RealEventfds()

    def get(self, fd: int) -> _Ref | int:
        held = self._checker.get(fd)
        if isinstance(held, int):
            return held
        self._checker.put(held)
        return _Ref(held.identity)

    def put(self, ref: object) -> None:
        pass

    def signal(self, ref: object) -> None:
        assert isinstance(ref, _Ref)
        self.counts[ref.identity] += 1

    def pending(self, ref: object) -> int:
        return 0

    def same(self, a: object, b: object) -> bool:
        assert isinstance(a, _Ref)
        assert isinstance(b, _Ref)
        return a.identity == b.identity and a.identity not in ("", "?")  # "?": no eventfd-id

    def drain(self, ref: object) -> int:
        assert isinstance(ref, _Ref)
        return self.counts.pop(ref.identity, 0)


class ModelMirror:
    """The model's view of one device; ``take(efd)`` is what it expects read."""

    @classmethod
    def of(cls, device: Device) -> ModelMirror:
        """The model of ``device``: the twin builder's hardware, the device's kernel."""
        return cls(function_of(device), device.kernel)

    def __init__(self, function: PciFunction, profile: KernelProfile) -> None:
        self._eventfds = _CountingRealEventfds()
        self.model = VfioPciModel(function, profile, self._eventfds)
        self.model.open_device()
        self.last: int | str | None = None  # the model's last answer (value or errno name)

    def apply(self, request: IrqSet) -> int:
        ret = self.model.ioctl_set_irqs(request.pack())
        self.last = ret if ret >= 0 else errno.errorcode.get(-ret, str(-ret))
        return ret

    def take(self, efd: EventFd) -> int:
        """How many signals the model expects on ``efd`` since the last take."""
        return self._eventfds.counts.pop(_eventfd_id(efd.fd), 0)

    def assert_matches(self, fds: Sequence[EventFd]) -> None:
        """Read every eventfd and require what the model expects (both reset)."""
        got = [efd.read() for efd in fds]
        want = [self.take(efd) for efd in fds]
        if got != want:
            rows = "\n".join(
                f"  eventfd {i}: model expects {w}, read {g}{'' if w == g else '   <--'}"
                for i, (w, g) in enumerate(zip(want, got, strict=True))
            )
            raise AssertionError(f"device and model disagree:\n{rows}")


class TrackedDevice:
    """A Device that mirrors every request into a ModelMirror."""

    def __init__(self, device: Device, mirror: ModelMirror) -> None:
        self._device = device
        self.mirror = mirror

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
        self.mirror.model.reset()
        self._device.reset()

    def reopen(self) -> TrackedDevice:
        """Reopen the device; the model sees the last close and a new open too."""
        self.mirror.model.close_device()
        self.mirror.model.state = IrqState()
        self.mirror.model.open_device()
        self._device = self._device.reopen()
        return self

    def quiesce(self) -> bool:
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
        return self._device.stimulus

    def info(self) -> DeviceInfo:
        return self._device.info()

    def irq_info(self, index: int) -> IrqInfo:
        return self._device.irq_info(index)

    def region_info(self, index: int) -> RegionInfo:
        return self._device.region_info(index)

    def read_region(self, index: int, offset: int, size: int) -> bytes:
        return self._device.read_region(index, offset, size)

    def write_region(self, index: int, offset: int, data: bytes) -> None:
        self._device.write_region(index, offset, data)

    def close(self) -> None:
        self._device.close()

    def __enter__(self) -> TrackedDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._device, name)
