"""vfio-hil: hardware-in-the-loop tests for VFIO interrupt semantics.

Open a device (``open_device`` for a real one bound to vfio-pci, or a
``SimDevice``), send ``IrqSet`` requests with ``set_irqs`` and read
``EventFd`` counters; ``VfioPciModel`` predicts what the kernel answers.
For fuzzing, ``vfio_hil.strategies`` (hypothesis strategies for requests) and
``vfio_hil.stateful`` (a state machine that drives a device and the model in
lockstep) are public modules too.
"""

from vfio_hil._assertions import assert_quiet, assert_signaled, expect_errno
from vfio_hil._device import Device, DeviceInfo, RegionInfo, Stimulus
from vfio_hil._errors import VfioError, VfioHilError, errno_name
from vfio_hil._eventfd import EventFd, read_counters
from vfio_hil._host import list_vfio_devices, open_device
from vfio_hil._irq import IrqIndex, IrqInfo, IrqInfoFlag, IrqSet, IrqSetFlag
from vfio_hil._model import (
    PROFILES,
    CountingEventfds,
    KernelOops,
    KernelProfile,
    Outcome,
    PciFunction,
    VfioPciModel,
    kernel_profile,
)
from vfio_hil._sim.device import SimDevice

__all__ = [
    "PROFILES",
    "CountingEventfds",
    "Device",
    "DeviceInfo",
    "EventFd",
    "IrqIndex",
    "IrqInfo",
    "IrqInfoFlag",
    "IrqSet",
    "IrqSetFlag",
    "KernelOops",
    "KernelProfile",
    "Outcome",
    "PciFunction",
    "RegionInfo",
    "SimDevice",
    "Stimulus",
    "VfioError",
    "VfioHilError",
    "VfioPciModel",
    "assert_quiet",
    "assert_signaled",
    "errno_name",
    "expect_errno",
    "kernel_profile",
    "list_vfio_devices",
    "open_device",
    "read_counters",
]
