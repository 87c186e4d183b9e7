"""ctypes mirrors of ``<linux/vfio.h>`` and ``<linux/iommufd.h>``.

Names follow the kernel headers exactly so a reader can diff them by eye;
``tests/test_uapi_header.py`` compiles a C probe against the real header and
checks every size, offset, flag and ioctl number below.  Nothing here validates
a request: the kernel's verdict is what vfio-hil observes.
"""

from __future__ import annotations

import ctypes
import enum

# --- ioctl numbers ------------------------------------------------------------
# All VFIO ioctls are _IO(';', 100 + n): no size or direction bits.
VFIO_TYPE = ord(";")
VFIO_BASE = 100


def _vfio_io(n: int) -> int:
    return (VFIO_TYPE << 8) | (VFIO_BASE + n)


VFIO_API_VERSION = 0

# container (/dev/vfio/vfio)
VFIO_GET_API_VERSION = _vfio_io(0)
VFIO_CHECK_EXTENSION = _vfio_io(1)
VFIO_SET_IOMMU = _vfio_io(2)
# group (/dev/vfio/N)
VFIO_GROUP_GET_STATUS = _vfio_io(3)
VFIO_GROUP_SET_CONTAINER = _vfio_io(4)
VFIO_GROUP_UNSET_CONTAINER = _vfio_io(5)
VFIO_GROUP_GET_DEVICE_FD = _vfio_io(6)
# device
VFIO_DEVICE_GET_INFO = _vfio_io(7)
VFIO_DEVICE_GET_REGION_INFO = _vfio_io(8)
VFIO_DEVICE_GET_IRQ_INFO = _vfio_io(9)
VFIO_DEVICE_SET_IRQS = _vfio_io(10)
VFIO_DEVICE_RESET = _vfio_io(11)
VFIO_DEVICE_FEATURE = _vfio_io(17)
# cdev (/dev/vfio/devices/vfioN), Linux >= 6.6
VFIO_DEVICE_BIND_IOMMUFD = _vfio_io(18)
VFIO_DEVICE_ATTACH_IOMMUFD_PT = _vfio_io(19)
VFIO_DEVICE_DETACH_IOMMUFD_PT = _vfio_io(20)
# iommufd (/dev/iommu): _IO(';', 0x80 + n)
IOMMUFD_TYPE = ord(";")
IOMMU_IOAS_ALLOC = (IOMMUFD_TYPE << 8) | (0x80 + 1)

# --- container extensions / IOMMU types ---------------------------------------
VFIO_TYPE1_IOMMU = 1
VFIO_TYPE1v2_IOMMU = 3
VFIO_NOIOMMU_IOMMU = 8

VFIO_GROUP_FLAGS_VIABLE = 1 << 0
VFIO_GROUP_FLAGS_CONTAINER_SET = 1 << 1

VFIO_DEVICE_FLAGS_RESET = 1 << 0
VFIO_DEVICE_FLAGS_PCI = 1 << 1

VFIO_REGION_INFO_FLAG_READ = 1 << 0
VFIO_REGION_INFO_FLAG_WRITE = 1 << 1
VFIO_REGION_INFO_FLAG_MMAP = 1 << 2
VFIO_REGION_INFO_FLAG_CAPS = 1 << 3

VFIO_IRQ_INFO_EVENTFD = 1 << 0
VFIO_IRQ_INFO_MASKABLE = 1 << 1
VFIO_IRQ_INFO_AUTOMASKED = 1 << 2
VFIO_IRQ_INFO_NORESIZE = 1 << 3

VFIO_IRQ_SET_DATA_NONE = 1 << 0
VFIO_IRQ_SET_DATA_BOOL = 1 << 1
VFIO_IRQ_SET_DATA_EVENTFD = 1 << 2
VFIO_IRQ_SET_ACTION_MASK = 1 << 3
VFIO_IRQ_SET_ACTION_UNMASK = 1 << 4
VFIO_IRQ_SET_ACTION_TRIGGER = 1 << 5
VFIO_IRQ_SET_DATA_TYPE_MASK = 0x07
VFIO_IRQ_SET_ACTION_TYPE_MASK = 0x38

# vfio-pci fixed region and IRQ indexes
VFIO_PCI_BAR0_REGION_INDEX = 0
VFIO_PCI_BAR5_REGION_INDEX = 5
VFIO_PCI_ROM_REGION_INDEX = 6
VFIO_PCI_CONFIG_REGION_INDEX = 7
VFIO_PCI_VGA_REGION_INDEX = 8
VFIO_PCI_NUM_REGIONS = 9

VFIO_PCI_INTX_IRQ_INDEX = 0
VFIO_PCI_MSI_IRQ_INDEX = 1
VFIO_PCI_MSIX_IRQ_INDEX = 2
VFIO_PCI_ERR_IRQ_INDEX = 3
VFIO_PCI_REQ_IRQ_INDEX = 4
VFIO_PCI_NUM_IRQS = 5


class IrqSetFlag(enum.IntFlag):
    """``VFIO_IRQ_SET_*``: one data type and one action per valid request."""

    DATA_NONE = VFIO_IRQ_SET_DATA_NONE
    DATA_BOOL = VFIO_IRQ_SET_DATA_BOOL
    DATA_EVENTFD = VFIO_IRQ_SET_DATA_EVENTFD
    ACTION_MASK = VFIO_IRQ_SET_ACTION_MASK
    ACTION_UNMASK = VFIO_IRQ_SET_ACTION_UNMASK
    ACTION_TRIGGER = VFIO_IRQ_SET_ACTION_TRIGGER


# --- structures -----------------------------------------------------------------
_u32 = ctypes.c_uint32
_s32 = ctypes.c_int32
_u64 = ctypes.c_uint64


class vfio_group_status(ctypes.Structure):  # noqa: N801 - kernel name
    _fields_ = (("argsz", _u32), ("flags", _u32))


class vfio_device_info(ctypes.Structure):  # noqa: N801
    # Linux 6.1's header ends at cap_offset (20 bytes); the kernel's minsz is 16.
    _fields_ = (
        ("argsz", _u32),
        ("flags", _u32),
        ("num_regions", _u32),
        ("num_irqs", _u32),
        ("cap_offset", _u32),
    )


class vfio_region_info(ctypes.Structure):  # noqa: N801
    _fields_ = (
        ("argsz", _u32),
        ("flags", _u32),
        ("index", _u32),
        ("cap_offset", _u32),
        ("size", _u64),
        ("offset", _u64),
    )


class vfio_irq_info(ctypes.Structure):  # noqa: N801
    _fields_ = (("argsz", _u32), ("flags", _u32), ("index", _u32), ("count", _u32))


class vfio_irq_set(ctypes.Structure):  # noqa: N801
    """The 20-byte header; ``data[]`` follows it in the same buffer."""

    _fields_ = (
        ("argsz", _u32),
        ("flags", _u32),
        ("index", _u32),
        ("start", _u32),
        ("count", _u32),
    )


class vfio_device_bind_iommufd(ctypes.Structure):  # noqa: N801
    # The 6.6 layout (16 bytes); 7.x appends token_uuid_ptr, which argsz omits.
    _fields_ = (
        ("argsz", _u32),
        ("flags", _u32),
        ("iommufd", _s32),
        ("out_devid", _u32),
    )


class vfio_device_attach_iommufd_pt(ctypes.Structure):  # noqa: N801
    # The 6.6 layout (12 bytes, the kernel's minsz); 7.3 appends u32 pasid,
    # read only with VFIO_DEVICE_ATTACH_PASID.
    _fields_ = (("argsz", _u32), ("flags", _u32), ("pt_id", _u32))


class iommu_ioas_alloc(ctypes.Structure):  # noqa: N801
    _fields_ = (("size", _u32), ("flags", _u32), ("out_ioas_id", _u32))


IRQ_SET_HEADER_SIZE = ctypes.sizeof(vfio_irq_set)
