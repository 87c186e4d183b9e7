"""vfio-hil: hardware-in-the-loop tests for VFIO interrupt semantics.

Open a device (``open_device`` for a real one bound to vfio-pci, or a
``SimDevice``), send ``IrqSet`` requests with ``set_irqs`` and read
``EventFd`` counters; ``VfioPciModel`` predicts what the kernel answers.
For fuzzing, ``vfio_hil.strategies`` (hypothesis strategies for requests) and
``vfio_hil.stateful`` (a state machine that drives a device and the model in
lockstep) are public modules too.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Each public name and the module that defines it.  Imported on first use
# (PEP 562): loading the pytest plugin must not pull in the host, simulator
# and model stacks before a test needs them.
_WHERE = {
    "assert_quiet": "vfio_hil._assertions",
    "assert_signaled": "vfio_hil._assertions",
    "expect_errno": "vfio_hil._assertions",
    "Device": "vfio_hil._device",
    "DeviceInfo": "vfio_hil._device",
    "Platform": "vfio_hil._device",
    "RegionInfo": "vfio_hil._device",
    "Stimulus": "vfio_hil._device",
    "VfioError": "vfio_hil._errors",
    "VfioHilError": "vfio_hil._errors",
    "errno_name": "vfio_hil._errors",
    "EventFd": "vfio_hil._eventfd",
    "read_counters": "vfio_hil._eventfd",
    "list_vfio_devices": "vfio_hil._host",
    "open_device": "vfio_hil._host",
    "IrqIndex": "vfio_hil._irq",
    "IrqInfo": "vfio_hil._irq",
    "IrqInfoFlag": "vfio_hil._irq",
    "IrqSet": "vfio_hil._irq",
    "IrqSetFlag": "vfio_hil._irq",
    "PROFILES": "vfio_hil._model",
    "CountingEventfds": "vfio_hil._model",
    "KernelOops": "vfio_hil._model",
    "KernelProfile": "vfio_hil._model",
    "Outcome": "vfio_hil._model",
    "PciFunction": "vfio_hil._model",
    "VfioPciModel": "vfio_hil._model",
    "kernel_profile": "vfio_hil._model",
    "SimDevice": "vfio_hil._sim.device",
}

if TYPE_CHECKING:
    from vfio_hil._assertions import assert_quiet, assert_signaled, expect_errno
    from vfio_hil._device import Device, DeviceInfo, Platform, RegionInfo, Stimulus
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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'vfio_hil' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


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
    "Platform",
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
