"""What a counterexample says about the device it was found on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vfio_hil._device import Device
from vfio_hil._lockstep.twin import function_of
from vfio_hil._model import KernelProfile

__all__ = ["DeviceFacts"]


@dataclass(frozen=True)
class DeviceFacts:
    """What a counterexample's ``requires:`` and header say about its device."""

    name: str
    kernel: KernelProfile
    counts: Mapping[int, int]
    pcie: bool
    dyn_msix: bool
    can_reset: bool

    @classmethod
    def of(cls, device: Device, kernel: KernelProfile, counts: Mapping[int, int]) -> DeviceFacts:
        fn = function_of(device)
        return cls(device.name, kernel, dict(counts), fn.pcie, fn.dyn_msix, fn.can_reset)
