"""The reference model of vfio-pci's interrupt ioctls.

Names load on first use (PEP 562): ``vfio_hil._model.profile`` (the kernel
table) is needed to parse a target spec, the rest only when a model runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "KernelOops": "base",
    "Outcome": "core",
    "VfioPciModel": "core",
    "CountingEventfds": "eventfds",
    "EventfdRef": "eventfds",
    "EventfdTable": "eventfds",
    "PciFunction": "function",
    "PROFILES": "profile",
    "KernelProfile": "profile",
    "kernel_profile": "profile",
    "IRQ_NONE": "state",
    "DeviceLines": "state",
    "IntxCtx": "state",
    "IrqState": "state",
}

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'vfio_hil._model' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"vfio_hil._model.{module}"), name)
    globals()[name] = value
    return value
