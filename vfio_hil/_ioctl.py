"""The one module that issues raw VFIO and iommufd ioctls.

One function per ioctl.  Arguments travel in ctypes structures (``_uapi``) or
bytearrays: ``fcntl.ioctl`` returns the ioctl's own return value only for a
*mutable* buffer (an immutable one yields the copied-back bytes instead), and
``VFIO_DEVICE_SET_IRQS`` and ``VFIO_GROUP_GET_DEVICE_FD`` return something
that matters.  A failure raises ``VfioError`` with the kernel's errno
unchanged and the ioctl's name as the operation.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
from collections.abc import Callable

from vfio_hil import _uapi as u
from vfio_hil._errors import VfioError
from vfio_hil._irq import IrqSet

__all__ = [
    "check_extension",
    "device_attach_iommufd_pt",
    "device_bind_iommufd",
    "device_get_info",
    "device_get_irq_info",
    "device_get_region_info",
    "device_reset",
    "device_set_irqs",
    "get_api_version",
    "group_get_device_fd",
    "group_get_status",
    "group_set_container",
    "group_unset_container",
    "ioas_alloc",
    "set_iommu",
    "set_irqs_on",
]

# Bound once: the SET_IRQS hot path looks nothing up.  Typed as returning int:
# with an int or a mutable buffer fcntl.ioctl returns the ioctl's result.
_ioctl: Callable[..., int] = fcntl.ioctl
_SET_IRQS = u.VFIO_DEVICE_SET_IRQS


def _errno_of(exc: OSError | ValueError) -> int:
    # fcntl refuses a negative fd (a closed device's -1) with ValueError before
    # any syscall; the kernel would have said EBADF, so report that.
    if isinstance(exc, ValueError):
        return errno.EBADF
    return exc.errno if exc.errno is not None else errno.EIO


def _by_value(fd: int, request: int, arg: int, operation: str, shown: object = None) -> int:
    """An ioctl whose argument is an integer (or unused): returns its result."""
    try:
        return _ioctl(fd, request, arg)
    except (OSError, ValueError) as exc:
        raise VfioError(_errno_of(exc), operation, shown) from None


def _by_buffer(
    fd: int,
    request: int,
    buf: ctypes.Structure | ctypes.c_int | bytearray,
    operation: str,
    shown: object = None,
) -> int:
    """An ioctl on a mutable buffer the kernel may fill: returns its result."""
    try:
        return _ioctl(fd, request, buf, True)
    except (OSError, ValueError) as exc:
        raise VfioError(_errno_of(exc), operation, shown) from None


# --- container (/dev/vfio/vfio) -------------------------------------------------
def get_api_version(container_fd: int) -> int:
    """``VFIO_GET_API_VERSION``: 0 (``VFIO_API_VERSION``) on every kernel."""
    return _by_value(container_fd, u.VFIO_GET_API_VERSION, 0, "VFIO_GET_API_VERSION")


def check_extension(container_fd: int, extension: int) -> int:
    """``VFIO_CHECK_EXTENSION``: 1 when the IOMMU type is offered, else 0."""
    return _by_value(
        container_fd, u.VFIO_CHECK_EXTENSION, extension, "VFIO_CHECK_EXTENSION", extension
    )


def set_iommu(container_fd: int, iommu_type: int) -> None:
    """``VFIO_SET_IOMMU``: only valid once a group is attached."""
    _by_value(container_fd, u.VFIO_SET_IOMMU, iommu_type, "VFIO_SET_IOMMU", iommu_type)


# --- group (/dev/vfio/N) --------------------------------------------------------
def group_get_status(group_fd: int) -> int:
    """``VFIO_GROUP_GET_STATUS``: the flags (VIABLE, CONTAINER_SET)."""
    status = u.vfio_group_status(argsz=ctypes.sizeof(u.vfio_group_status))
    _by_buffer(group_fd, u.VFIO_GROUP_GET_STATUS, status, "VFIO_GROUP_GET_STATUS")
    return int(status.flags)


def group_set_container(group_fd: int, container_fd: int) -> None:
    """``VFIO_GROUP_SET_CONTAINER``: the argument is a pointer to the fd."""
    arg = ctypes.c_int(container_fd)
    _by_buffer(group_fd, u.VFIO_GROUP_SET_CONTAINER, arg, "VFIO_GROUP_SET_CONTAINER", container_fd)


def group_unset_container(group_fd: int) -> None:
    """``VFIO_GROUP_UNSET_CONTAINER``."""
    _by_value(group_fd, u.VFIO_GROUP_UNSET_CONTAINER, 0, "VFIO_GROUP_UNSET_CONTAINER")


def group_get_device_fd(group_fd: int, name: str) -> int:
    """``VFIO_GROUP_GET_DEVICE_FD``: a new (close-on-exec) device fd."""
    arg = bytearray(name.encode() + b"\0")
    return _by_buffer(group_fd, u.VFIO_GROUP_GET_DEVICE_FD, arg, "VFIO_GROUP_GET_DEVICE_FD", name)


# --- device ---------------------------------------------------------------------
def device_get_info(device_fd: int) -> u.vfio_device_info:
    """``VFIO_DEVICE_GET_INFO``."""
    info = u.vfio_device_info(argsz=ctypes.sizeof(u.vfio_device_info))
    _by_buffer(device_fd, u.VFIO_DEVICE_GET_INFO, info, "VFIO_DEVICE_GET_INFO")
    return info


def device_get_region_info(device_fd: int, index: int) -> u.vfio_region_info:
    """``VFIO_DEVICE_GET_REGION_INFO`` for one region index."""
    info = u.vfio_region_info(argsz=ctypes.sizeof(u.vfio_region_info), index=index)
    op = "VFIO_DEVICE_GET_REGION_INFO"
    _by_buffer(device_fd, u.VFIO_DEVICE_GET_REGION_INFO, info, op, f"index={index}")
    return info


def device_get_irq_info(device_fd: int, index: int) -> u.vfio_irq_info:
    """``VFIO_DEVICE_GET_IRQ_INFO`` for one IRQ index."""
    info = u.vfio_irq_info(argsz=ctypes.sizeof(u.vfio_irq_info), index=index)
    op = "VFIO_DEVICE_GET_IRQ_INFO"
    _by_buffer(device_fd, u.VFIO_DEVICE_GET_IRQ_INFO, info, op, f"index={index}")
    return info


def device_set_irqs(device_fd: int, irqset: IrqSet) -> int:
    """``VFIO_DEVICE_SET_IRQS``: the kernel's return value, which may be positive.

    The hot path builds nothing: the request's mutable buffer, which makes
    ``fcntl.ioctl`` return the int, was made with the request.
    """
    try:
        return _ioctl(device_fd, _SET_IRQS, irqset._buffer, True)
    except (OSError, ValueError) as exc:
        raise VfioError(_errno_of(exc), "VFIO_DEVICE_SET_IRQS", irqset) from None


def set_irqs_on(device_fd: int) -> Callable[[IrqSet], int]:
    """``device_set_irqs`` bound to one fd: the hot path in a single frame."""

    def set_irqs(irqset: IrqSet, _ioctl: Callable[..., int] = _ioctl, _req: int = _SET_IRQS) -> int:
        try:
            return _ioctl(device_fd, _req, irqset._buffer, True)
        except (OSError, ValueError) as exc:
            raise VfioError(_errno_of(exc), "VFIO_DEVICE_SET_IRQS", irqset) from None

    return set_irqs


def device_reset(device_fd: int) -> None:
    """``VFIO_DEVICE_RESET``."""
    _by_value(device_fd, u.VFIO_DEVICE_RESET, 0, "VFIO_DEVICE_RESET")


# --- cdev + iommufd -------------------------------------------------------------
def device_bind_iommufd(device_fd: int, iommufd: int) -> int:
    """``VFIO_DEVICE_BIND_IOMMUFD``: returns ``out_devid``.

    argsz is our 16-byte (6.6) layout; newer kernels accept it (minsz 16).
    """
    bind = u.vfio_device_bind_iommufd(
        argsz=ctypes.sizeof(u.vfio_device_bind_iommufd), iommufd=iommufd
    )
    op = "VFIO_DEVICE_BIND_IOMMUFD"
    _by_buffer(device_fd, u.VFIO_DEVICE_BIND_IOMMUFD, bind, op, f"iommufd={iommufd}")
    return int(bind.out_devid)


def device_attach_iommufd_pt(device_fd: int, pt_id: int) -> int:
    """``VFIO_DEVICE_ATTACH_IOMMUFD_PT``: returns the pt_id the kernel wrote back."""
    attach = u.vfio_device_attach_iommufd_pt(
        argsz=ctypes.sizeof(u.vfio_device_attach_iommufd_pt), pt_id=pt_id
    )
    op = "VFIO_DEVICE_ATTACH_IOMMUFD_PT"
    _by_buffer(device_fd, u.VFIO_DEVICE_ATTACH_IOMMUFD_PT, attach, op, f"pt_id={pt_id}")
    return int(attach.pt_id)


def ioas_alloc(iommufd: int) -> int:
    """``IOMMU_IOAS_ALLOC`` on /dev/iommu: returns ``out_ioas_id``."""
    alloc = u.iommu_ioas_alloc(size=ctypes.sizeof(u.iommu_ioas_alloc))
    _by_buffer(iommufd, u.IOMMU_IOAS_ALLOC, alloc, "IOMMU_IOAS_ALLOC")
    return int(alloc.out_ioas_id)
