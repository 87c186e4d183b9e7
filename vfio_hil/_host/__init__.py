"""Real VFIO devices: discovery in sysfs, the group and cdev open paths,
``HostDevice``, the edu stimulus and the host's platform facts.  The
simulator uses only ``EduStimulus`` (the same register writes drive a
simulated edu); a kernel with vfio-pci is needed only when a device is opened.
"""

from vfio_hil._host.device import HostDevice
from vfio_hil._host.edu import EduStimulus
from vfio_hil._host.open import IOMMU_MODES, open_device
from vfio_hil._host.paths import HostPaths, default_paths, set_default_paths
from vfio_hil._host.sysfs import GroupMember, PciDevice, list_vfio_devices, parse_address

__all__ = [
    "IOMMU_MODES",
    "EduStimulus",
    "GroupMember",
    "HostDevice",
    "HostPaths",
    "PciDevice",
    "default_paths",
    "list_vfio_devices",
    "open_device",
    "parse_address",
    "set_default_paths",
]
