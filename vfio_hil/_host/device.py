"""``HostDevice``: a real vfio-pci device fd behind the ``Device`` protocol."""

from __future__ import annotations

import contextlib
import errno
import os
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from vfio_hil import _ioctl
from vfio_hil import _uapi as u
from vfio_hil._device import DeviceInfo, Platform, RegionInfo, Stimulus
from vfio_hil._errors import VfioError
from vfio_hil._host.edu import EduStimulus, is_edu
from vfio_hil._host.nodes import Opened, close_all
from vfio_hil._host.platform import host_platform, running_kernel_profile
from vfio_hil._host.sysfs import PciDevice
from vfio_hil._irq import IrqInfo, IrqInfoFlag, IrqSet

if TYPE_CHECKING:
    from vfio_hil._model.profile import KernelProfile

__all__ = ["HostDevice"]

_PCI_VENDOR_ID = 0x00  # config space: u16 vendor, u16 device


class HostDevice:
    """An open VFIO device.  Every method is one syscall the kernel answers.

    ``close()`` closes the device fd first, then what kept it usable (group
    then container, or the iommufd), and is idempotent.  After it, ioctls fail
    with EBADF like they would on a closed fd.
    """

    def __init__(
        self,
        name: str,
        opened: Opened,
        pci: PciDevice | None = None,
        reopen: Callable[[], HostDevice] | None = None,
    ) -> None:
        self._name = name
        self._reopen = reopen
        self._fd = opened.device_fd
        self.set_irqs = _ioctl.set_irqs_on(self._fd)
        self._backing = opened.backing_fds
        self.iommu = opened.iommu
        self.pci = pci
        self._regions: dict[int, RegionInfo] = {}
        self._stimulus: Stimulus | None = None
        self._stimulus_checked = False

    # --- identity ------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def fd(self) -> int:
        """The raw device fd (-1 once closed), for ioctls vfio-hil does not wrap."""
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    @property
    def stimulus(self) -> Stimulus | None:
        """An ``EduStimulus`` when this is QEMU's edu device, else None."""
        if not self._stimulus_checked:
            vendor, device = self._ids()
            self._stimulus = EduStimulus(self) if is_edu(vendor, device) else None
            self._stimulus_checked = True
        return self._stimulus

    def _ids(self) -> tuple[int, int]:
        if self.pci is not None:
            return self.pci.vendor, self.pci.device
        raw = self.read_region(u.VFIO_PCI_CONFIG_REGION_INDEX, _PCI_VENDOR_ID, 4)
        vendor, device = struct.unpack("<HH", raw)
        return int(vendor), int(device)

    # --- ioctls --------------------------------------------------------------
    def info(self) -> DeviceInfo:
        raw = _ioctl.device_get_info(self._fd)
        return DeviceInfo(int(raw.flags), int(raw.num_regions), int(raw.num_irqs))

    def irq_info(self, index: int) -> IrqInfo:
        raw = _ioctl.device_get_irq_info(self._fd, index)
        return IrqInfo(int(raw.index), IrqInfoFlag(int(raw.flags)), int(raw.count))

    # VFIO_DEVICE_SET_IRQS; returns the kernel's (possibly positive) result.
    # An attribute, not a method: a closure over the fd saves the hot path a
    # frame (rebound to fd -1, which fails with EBADF, at close).
    set_irqs: Callable[[IrqSet], int]

    def reset(self) -> None:
        _ioctl.device_reset(self._fd)

    def region_info(self, index: int) -> RegionInfo:
        raw = _ioctl.device_get_region_info(self._fd, index)
        return RegionInfo(int(raw.index), int(raw.flags), int(raw.size), int(raw.offset))

    # --- regions -------------------------------------------------------------
    def _region_offset(self, index: int) -> int:
        # A region's place in the fd is fixed while the fd is open: ask once.
        region = self._regions.get(index)
        if region is None:
            region = self._regions[index] = self.region_info(index)
        return region.offset

    def read_region(self, index: int, offset: int, size: int) -> bytes:
        """pread ``size`` bytes at ``offset`` of region ``index``."""
        op = f"pread region {index} offset {offset:#x} size {size}"
        try:
            data = os.pread(self._fd, size, self._region_offset(index) + offset)
        except OSError as exc:
            raise VfioError(exc.errno or errno.EIO, op) from None
        if len(data) != size:
            raise VfioError(errno.EIO, f"{op}: short read of {len(data)} bytes")
        return data

    def write_region(self, index: int, offset: int, data: bytes) -> None:
        """pwrite ``data`` at ``offset`` of region ``index``."""
        op = f"pwrite region {index} offset {offset:#x} size {len(data)}"
        try:
            done = os.pwrite(self._fd, data, self._region_offset(index) + offset)
        except OSError as exc:
            raise VfioError(exc.errno or errno.EIO, op) from None
        if done != len(data):
            raise VfioError(errno.EIO, f"{op}: short write of {done} bytes")

    @property
    def kernel(self) -> KernelProfile:
        """The running kernel's profile: a real device is answered by it."""
        return running_kernel_profile()

    @property
    def platform(self) -> Platform:
        return host_platform()

    # --- lifetime ------------------------------------------------------------
    def quiesce(self) -> bool:
        """Nothing to do: the kernel's late signals come when they come."""
        return False

    def reopen(self) -> HostDevice:
        """Close this device (the last close), then open it the same way again."""
        if self._reopen is None:
            raise VfioError(errno.EBADF, "reopen", f"{self._name} was not opened by open_device")
        self.close()
        return self._reopen()

    def close(self) -> None:
        """Close the device fd, then group/container or iommufd.  Idempotent."""
        if self._fd < 0:
            return
        self.set_irqs = _ioctl.set_irqs_on(-1)
        fds = (self._fd, *self._backing)
        self._fd, self._backing = -1, ()
        close_all(fds)

    def __enter__(self) -> HostDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # A leaked device keeps its group busy for every later open: free it.
        if getattr(self, "_fd", -1) >= 0:
            with contextlib.suppress(Exception):  # interpreter shutdown
                self.close()

    def __repr__(self) -> str:
        state = "closed" if self._fd < 0 else f"fd={self._fd}"
        return f"HostDevice({self._name}, {self.iommu}, {state})"
