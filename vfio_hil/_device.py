"""The ``Device`` protocol that real and simulated devices both implement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from vfio_hil._irq import IrqInfo, IrqSet

__all__ = ["Device", "DeviceInfo", "RegionInfo", "Stimulus"]


@dataclass(frozen=True)
class DeviceInfo:
    """``VFIO_DEVICE_GET_INFO``."""

    flags: int
    num_regions: int
    num_irqs: int

    @property
    def can_reset(self) -> bool:
        return bool(self.flags & 1)


@dataclass(frozen=True)
class RegionInfo:
    """``VFIO_DEVICE_GET_REGION_INFO``."""

    index: int
    flags: int
    size: int
    offset: int


@runtime_checkable
class Stimulus(Protocol):
    """The device side: make the device raise or clear interrupt causes.

    It behaves like QEMU's ``edu`` device: ``raise_irq`` sets status bits and
    sends MSI vector 0 when MSI is enabled, else asserts INTx while any bit is
    set; ``clear_irq`` clears bits and deasserts INTx when none is left.
    """

    def raise_irq(self, value: int = 1) -> None: ...

    def clear_irq(self, value: int = 0xFFFFFFFF) -> None: ...

    def status(self) -> int: ...


@runtime_checkable
class Device(Protocol):
    """A VFIO device: a real one from ``open_device`` or a ``SimDevice``."""

    @property
    def name(self) -> str: ...

    @property
    def stimulus(self) -> Stimulus | None: ...

    def info(self) -> DeviceInfo: ...

    def irq_info(self, index: int) -> IrqInfo: ...

    def set_irqs(self, irqset: IrqSet) -> int: ...

    def reset(self) -> None: ...

    def region_info(self, index: int) -> RegionInfo: ...

    def read_region(self, index: int, offset: int, size: int) -> bytes: ...

    def write_region(self, index: int, offset: int, data: bytes) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> Device: ...

    def __exit__(self, *exc: object) -> None: ...
