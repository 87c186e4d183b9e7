"""The legacy path: /dev/vfio/vfio container + /dev/vfio/N group -> device fd.

Order as in Documentation/driver-api/vfio.rst: check the API version, check
the group is viable, attach it to the container, pick the IOMMU model
(TYPE1v2, else TYPE1; NOIOMMU for a /dev/vfio/noiommu-N group), then ask the
group for the device by name.
"""

from __future__ import annotations

import errno
import os
from contextlib import ExitStack
from pathlib import Path

from vfio_hil import _ioctl
from vfio_hil import _uapi as u
from vfio_hil._errors import VfioError, VfioHilError
from vfio_hil._host import hints
from vfio_hil._host.nodes import Opened, open_node
from vfio_hil._host.paths import HostPaths
from vfio_hil._host.sysfs import PciDevice

__all__ = ["group_node", "open_via_group"]

_IOMMU_NAMES = {
    u.VFIO_TYPE1v2_IOMMU: "VFIO_TYPE1v2_IOMMU",
    u.VFIO_TYPE1_IOMMU: "VFIO_TYPE1_IOMMU",
    u.VFIO_NOIOMMU_IOMMU: "VFIO_NOIOMMU_IOMMU",
}


def group_node(dev: PciDevice, paths: HostPaths) -> tuple[Path, bool]:
    """(/dev/vfio/N or /dev/vfio/noiommu-N, is_noiommu) for the device's group."""
    if dev.iommu_group is None:
        raise hints.no_iommu_group(dev, paths)
    plain = paths.vfio / dev.iommu_group
    noiommu = paths.vfio / f"noiommu-{dev.iommu_group}"
    if plain.exists():
        return plain, False
    if noiommu.exists():
        return noiommu, True
    raise VfioHilError(
        f"no VFIO group node for {dev.address}: neither {plain} nor {noiommu} exists",
        "vfio-pci creates it when the device is bound; check `ls -l /dev/vfio` and udev"
        " (in a container pass the group node through)",
    )


def open_via_group(dev: PciDevice, paths: HostPaths) -> Opened:
    """Open ``dev`` through its group; the caller owns the returned fds."""
    node, noiommu = group_node(dev, paths)
    cdev = _cdev_node(dev, paths)
    with ExitStack() as undo:
        container = _open_container(paths)
        undo.callback(os.close, container)
        group = open_node(
            node,
            paths,
            what=f"IOMMU group {dev.iommu_group}",
            noiommu=noiommu,
            busy_with=cdev,
            missing_hint="vfio-pci creates it when the device is bound",
        )
        undo.callback(os.close, group)
        _require_viable(group, dev, paths)
        _attach(group, container, noiommu, dev, node)
        _set_iommu(container, noiommu, dev, paths)
        device = _device_fd(group, dev, paths, node)
        undo.pop_all()
    return Opened(device, (group, container), "noiommu" if noiommu else "group")


def _cdev_node(dev: PciDevice, paths: HostPaths) -> list[Path]:
    """The device's cdev node when there is one (sysfs lists vfio-dev/vfioN even
    on kernels built without CONFIG_VFIO_DEVICE_CDEV, which have no node)."""
    node = paths.vfio_cdevs / dev.vfio_cdev if dev.vfio_cdev else None
    return [node] if node is not None and node.exists() else []


def _open_container(paths: HostPaths) -> int:
    fd = open_node(
        paths.vfio_container,
        paths,
        what="the VFIO container",
        missing_hint="load vfio: `modprobe vfio-pci`; a kernel built without"
        " CONFIG_VFIO_CONTAINER has no container: use iommu='cdev'",
    )
    try:
        version = _ioctl.get_api_version(fd)
    except VfioError as exc:
        os.close(fd)
        raise VfioHilError(
            f"{paths.vfio_container} is not a VFIO container: {exc}",
            "is /dev/vfio/vfio a real device node (c 10:196)? check `ls -l /dev/vfio`",
        ) from exc
    if version != u.VFIO_API_VERSION:
        os.close(fd)
        raise VfioHilError(
            f"VFIO API version {version}, expected {u.VFIO_API_VERSION}",
            "this kernel's VFIO is not the one vfio-hil speaks; report it",
        )
    return fd


def _require_viable(group: int, dev: PciDevice, paths: HostPaths) -> None:
    try:
        flags = _ioctl.group_get_status(group)
    except VfioError as exc:
        raise VfioHilError(
            f"{dev.address}: {exc}", "the group vanished (device unbound meanwhile?); rebind it"
        ) from exc
    if not flags & u.VFIO_GROUP_FLAGS_VIABLE:
        raise hints.not_viable(dev, paths)


def _attach(group: int, container: int, noiommu: bool, dev: PciDevice, node: Path) -> None:
    try:
        _ioctl.group_set_container(group, container)
    except VfioError as exc:
        raise VfioHilError(
            f"{dev.address}: cannot attach {node} to the container: {exc}",
            "check `dmesg | tail`; the group may already be attached elsewhere",
        ) from exc


def _set_iommu(container: int, noiommu: bool, dev: PciDevice, paths: HostPaths) -> int:
    """SET_IOMMU with the best offered type; returns it."""
    wanted = [u.VFIO_NOIOMMU_IOMMU] if noiommu else [u.VFIO_TYPE1v2_IOMMU, u.VFIO_TYPE1_IOMMU]
    offered = [t for t in wanted if _ioctl.check_extension(container, t) == 1]
    if not offered:
        raise _no_iommu_type(wanted, noiommu)
    failure: VfioError | None = None
    for iommu_type in offered:  # TYPE1v2 first, TYPE1 as the fallback
        try:
            _ioctl.set_iommu(container, iommu_type)
            return iommu_type
        except VfioError as exc:
            if exc.errno == errno.EPERM and noiommu:
                raise hints.permission_denied(paths.vfio_container, noiommu=True) from exc
            failure = exc
    raise VfioHilError(
        f"{dev.address}: {failure}", "check `dmesg | tail` for the IOMMU driver's complaint"
    ) from failure


def _no_iommu_type(wanted: list[int], noiommu: bool) -> VfioHilError:
    names = " or ".join(_IOMMU_NAMES[t] for t in wanted)
    if noiommu:
        hint = (
            "enable it: `echo Y > /sys/module/vfio/parameters/enable_unsafe_noiommu_mode`"
            " (kernel built with CONFIG_VFIO_NOIOMMU)"
        )
    else:
        hint = "load the type1 IOMMU backend: `modprobe vfio_iommu_type1`"
    return VfioHilError(f"the VFIO container offers no {names}", hint)


def _device_fd(group: int, dev: PciDevice, paths: HostPaths, node: Path) -> int:
    try:
        return _ioctl.group_get_device_fd(group, dev.address)
    except VfioError as exc:
        if exc.errno == errno.EBUSY:
            raise hints.busy(_cdev_node(dev, paths) or [node], paths.proc, dev.address) from exc
        raise VfioHilError(
            f"{dev.address}: {exc}", f"is {dev.address} really in {node}? check `dmesg | tail`"
        ) from exc
