"""The reference model of vfio-pci's interrupt ioctls."""

from vfio_hil._model.base import KernelOops
from vfio_hil._model.core import Outcome, VfioPciModel
from vfio_hil._model.eventfds import CountingEventfds, EventfdRef, EventfdTable
from vfio_hil._model.function import PciFunction
from vfio_hil._model.profile import PROFILES, KernelProfile, kernel_profile
from vfio_hil._model.state import IRQ_NONE, DeviceLines, IntxCtx, IrqState

__all__ = [
    "IRQ_NONE",
    "PROFILES",
    "CountingEventfds",
    "DeviceLines",
    "EventfdRef",
    "EventfdTable",
    "IntxCtx",
    "IrqState",
    "KernelOops",
    "KernelProfile",
    "Outcome",
    "PciFunction",
    "VfioPciModel",
    "kernel_profile",
]
