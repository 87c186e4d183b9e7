"""The cdev path (Linux >= 6.6): /dev/vfio/devices/vfioN bound to /dev/iommu.

BIND_IOMMUFD must come first (every other device ioctl is EINVAL before it);
an IOAS is then allocated and attached so the device could do DMA, as a VMM
would, although SET_IRQS itself does not need it.
"""

from __future__ import annotations

import errno
import os
from contextlib import ExitStack
from pathlib import Path

from vfio_hil import _ioctl
from vfio_hil._errors import VfioError, VfioHilError
from vfio_hil._host import hints
from vfio_hil._host.holders import find_holders
from vfio_hil._host.nodes import Opened, open_node
from vfio_hil._host.paths import HostPaths
from vfio_hil._host.sysfs import PciDevice

__all__ = ["cdev_available", "open_via_cdev"]

_NO_CDEV_HINT = (
    "the cdev needs Linux >= 6.6 built with CONFIG_VFIO_DEVICE_CDEV=y; use iommu='group'"
)


def cdev_available(dev: PciDevice, paths: HostPaths) -> bool:
    """True when both the device's cdev node and /dev/iommu exist."""
    return (
        dev.vfio_cdev is not None
        and (paths.vfio_cdevs / dev.vfio_cdev).exists()
        and paths.iommufd.exists()
    )


def open_via_cdev(dev: PciDevice, paths: HostPaths) -> Opened:
    """Open, bind, allocate an IOAS and attach; the caller owns the returned fds."""
    if dev.vfio_cdev is None:
        raise VfioHilError(
            f"{dev.address} has no VFIO cdev ({paths.device_dir(dev.address)}/vfio-dev is missing)",
            _NO_CDEV_HINT,
        )
    if dev.iommu_group and (paths.vfio / f"noiommu-{dev.iommu_group}").exists():
        # Seen in the lab's 7.2 without an IOMMU: sysfs lists vfio-dev/vfioN, no node.
        raise VfioHilError(
            f"{dev.address} is in NOIOMMU mode ({paths.vfio}/noiommu-{dev.iommu_group}): "
            "the kernel gives a NOIOMMU device no cdev",
            "open it by its group: iommu='group' (or auto)",
        )
    node = paths.vfio_cdevs / dev.vfio_cdev
    group_node = paths.vfio / dev.iommu_group if dev.iommu_group else None
    group = [group_node] if group_node is not None and group_node.exists() else []
    with ExitStack() as undo:
        device = open_node(
            node,
            paths,
            what=dev.address,
            busy_with=group,
            missing_hint=f"udev did not create it; {_NO_CDEV_HINT}",
        )
        undo.callback(os.close, device)
        iommufd = open_node(
            paths.iommufd,
            paths,
            what="/dev/iommu",
            missing_hint="load iommufd: `modprobe iommufd` (CONFIG_IOMMUFD); or use iommu='group'",
        )
        undo.callback(os.close, iommufd)
        _bind(device, iommufd, dev, paths, [node, *group])
        _attach_new_ioas(device, iommufd, dev)
        undo.pop_all()
    return Opened(device, (iommufd,), "cdev")


def _bind(device: int, iommufd: int, dev: PciDevice, paths: HostPaths, nodes: list[Path]) -> None:
    try:
        _ioctl.device_bind_iommufd(device, iommufd)
    except VfioError as exc:
        raise _bind_error(exc, dev, paths, nodes) from exc


def _bind_error(
    exc: VfioError, dev: PciDevice, paths: HostPaths, nodes: list[Path]
) -> VfioHilError:
    # EBUSY: the group path has it open.  EINVAL: another cdev fd is bound.
    others = [h for h in find_holders(nodes, paths.proc) if h.pid != os.getpid()]
    if exc.errno == errno.EBUSY or (exc.errno == errno.EINVAL and others):
        return hints.busy(nodes, paths.proc, dev.address)
    # EPERM: a group sibling is owned by a host driver (DMA ownership refused).
    if exc.errno == errno.EPERM and any(m.blocks_group for m in dev.group_members):
        return hints.not_viable(dev, paths)
    return VfioHilError(
        f"{dev.address}: {exc}", "check `dmesg | tail`; iommu='group' may work where cdev does not"
    )


def _attach_new_ioas(device: int, iommufd: int, dev: PciDevice) -> None:
    try:
        ioas = _ioctl.ioas_alloc(iommufd)
        _ioctl.device_attach_iommufd_pt(device, ioas)
    except VfioError as exc:
        raise VfioHilError(
            f"{dev.address}: {exc}", "check `dmesg | tail` for what the IOMMU driver refused"
        ) from exc
