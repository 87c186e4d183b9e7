"""``open_device("0000:00:03.0")``: from a PCI address to an open ``HostDevice``.

The checks run cheapest and most common first, each failing with a
VfioHilError that names the fix: address form, device present, bound to
vfio-pci, /dev/vfio present, IOMMU group, then the chosen open path.
"""

from __future__ import annotations

import os

from vfio_hil._errors import VfioHilError
from vfio_hil._host import hints
from vfio_hil._host.cdev import cdev_available, open_via_cdev
from vfio_hil._host.container import open_via_group
from vfio_hil._host.device import HostDevice
from vfio_hil._host.paths import HostPaths, default_paths
from vfio_hil._host.sysfs import ADDRESS_FORM, PciDevice, parse_address, read_pci_device

__all__ = ["IOMMU_MODES", "open_device"]

IOMMU_MODES = ("auto", "group", "cdev")


def open_device(
    address: str, *, iommu: str | None = None, paths: HostPaths | None = None
) -> HostDevice:
    """Open the vfio-pci device at ``address`` ("DDDD:BB:DD.F" or "BB:DD.F").

    ``iommu``: "cdev" (/dev/vfio/devices/vfioN + /dev/iommu, Linux >= 6.6),
    "group" (/dev/vfio/vfio container + /dev/vfio/N, or noiommu-N), or "auto":
    cdev when the device has one, /dev/iommu exists and the device is not in
    NOIOMMU mode, else group.  None: ``VFIO_HIL_IOMMU`` decides (``noiommu``
    there means group), else auto.  ``device.iommu`` says which path it took.
    ``paths`` re-roots /sys, /dev and /proc (tests use a fake sysfs tree).
    """
    if iommu is None:
        iommu = _from_env()
    if not isinstance(address, str):
        raise TypeError(
            f"address must be a PCI address as a str, {ADDRESS_FORM}, "
            f"not {type(address).__name__} {address!r}"
        )
    if iommu not in IOMMU_MODES:
        raise VfioHilError(f"unknown iommu mode {iommu!r}", f"use one of {', '.join(IOMMU_MODES)}")
    if paths is not None and not isinstance(paths, HostPaths):
        raise TypeError(
            f"paths must be a HostPaths (HostPaths(sys=Path(...))) or None, "
            f"not {type(paths).__name__} {paths!r}"
        )
    paths = paths or default_paths()
    dev = read_pci_device(parse_address(address), paths)
    _check_ready(dev, paths)
    if _use_cdev(dev, paths, iommu):
        opened = open_via_cdev(dev, paths)
    else:
        opened = open_via_group(dev, paths)
    return HostDevice(
        dev.address, opened, dev, lambda: open_device(address, iommu=iommu, paths=paths)
    )


def _from_env() -> str:
    chosen = os.environ.get("VFIO_HIL_IOMMU") or "auto"
    if chosen == "noiommu":  # a device is in NOIOMMU mode or not: its group opens it
        return "group"
    if chosen not in IOMMU_MODES:
        raise VfioHilError(
            f"VFIO_HIL_IOMMU={chosen!r} is no iommu path",
            f"use one of {', '.join(IOMMU_MODES)} (or noiommu), or unset it",
        )
    return chosen


def _check_ready(dev: PciDevice, paths: HostPaths) -> None:
    """Everything sysfs and /dev can tell before the first open()."""
    if not dev.bound_to_vfio:
        raise hints.not_bound(dev, paths)
    if not paths.vfio.is_dir():
        raise hints.no_dev_vfio(paths)
    if dev.iommu_group is None:
        raise hints.no_iommu_group(dev, paths)


def _use_cdev(dev: PciDevice, paths: HostPaths, iommu: str) -> bool:
    if iommu == "auto":
        # A NOIOMMU device's cdev binds only without an iommufd (bind with -1):
        # its group is the documented way in.
        noiommu = (paths.vfio / f"noiommu-{dev.iommu_group}").exists()
        return cdev_available(dev, paths) and not noiommu
    if iommu == "cdev" and not paths.iommufd.exists():
        raise VfioHilError(
            f"iommu='cdev' needs {paths.iommufd}, which does not exist",
            "load iommufd: `modprobe iommufd` (CONFIG_IOMMUFD); or use iommu='group'",
        )
    return iommu == "cdev"
