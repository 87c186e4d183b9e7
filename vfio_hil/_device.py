"""The ``Device`` protocol that real and simulated devices both implement."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from vfio_hil._irq import IrqInfo, IrqSet

if TYPE_CHECKING:
    from vfio_hil._model.profile import KernelProfile

__all__ = ["Device", "DeviceInfo", "Platform", "RegionInfo", "Stimulus", "close_clean"]


@dataclass(frozen=True)
class Platform:
    """What user space cannot read from the device but the kernel's answers depend on.

    ``intx_level_at_enable``: a level raised before INTx is enabled is
    delivered at enable (QEMU's IO-APIC drops it: False in a QEMU guest).
    ``pci_2_3``: INTx can be masked with PCI_COMMAND.DisINTx.
    ``host_vectors``: how many host IRQ vectors an enable can get.
    ``multi_msi``: MSI (not MSI-X) can have more than one vector; on x86
    only with interrupt remapping (without it an enable of N > 1 gets one).
    """

    intx_level_at_enable: bool = True
    pci_2_3: bool = True
    host_vectors: int = 4096
    multi_msi: bool = True


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

    @property
    def kernel(self) -> KernelProfile:
        """The kernel profile that answers this device (the running kernel's, if real)."""
        ...

    @property
    def platform(self) -> Platform: ...

    def info(self) -> DeviceInfo: ...

    def irq_info(self, index: int) -> IrqInfo: ...

    def set_irqs(self, irqset: IrqSet) -> int: ...

    def reset(self) -> None: ...

    def region_info(self, index: int) -> RegionInfo: ...

    def read_region(self, index: int, offset: int, size: int) -> bytes: ...

    def write_region(self, index: int, offset: int, data: bytes) -> None: ...

    def close(self) -> None: ...

    def reopen(self) -> Device:
        """Close the device (the last close) and open it again; returns the open one."""
        ...

    def quiesce(self) -> bool:
        """Complete what the device delivers asynchronously, if it can.

        True: every signal of the steps so far has been delivered (a
        simulated device).  False: signals may still arrive (a real kernel;
        ``vfio_hil._lockstep.timing`` says how long to wait for them).
        """
        ...

    def __enter__(self) -> Device: ...

    def __exit__(self, *exc: object) -> None: ...


def close_clean(device: Device) -> None:
    """Leave the device as a new user expects it, then close it: its interrupt
    status cleared (a raised status would fire at the next enable), every index
    disabled.  Best effort: after a failed step or reopen some calls fail, and a
    cleanup error must not hide the failure that came first."""
    from vfio_hil._errors import VfioError
    from vfio_hil._irq import IrqIndex

    with contextlib.suppress(VfioError, OSError):
        if device.stimulus is not None:
            device.stimulus.clear_irq()
    for index in IrqIndex:
        with contextlib.suppress(VfioError, OSError):  # EINVAL: that index was not on
            device.set_irqs(IrqSet.disable(index))
    device.close()
