"""Target specs: what a run is pointed at, and how to open it.

``0000:01:00.0`` (or ``01:00.0``) is a real device bound to vfio-pci;
``sim:edu``, ``sim:virtio_msix``, ``sim:virtio_msix_2048`` are simulated,
optionally with a kernel profile: ``sim:edu@6.1``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from vfio_hil._device import Device
from vfio_hil._errors import VfioHilError
from vfio_hil._sim.device import DEFAULT_KERNEL, SimDevice

__all__ = ["DEFAULT_TARGETS", "SIM_PRESETS", "Target", "parse_target", "targets_from_env"]

SIM_PRESETS: dict[str, Callable[[str], SimDevice]] = {
    "edu": lambda kernel: SimDevice.edu(kernel=kernel),
    "virtio_msix": lambda kernel: SimDevice.virtio_msix(64, kernel=kernel),
    "virtio_msix_2048": lambda kernel: SimDevice.virtio_msix(2048, kernel=kernel),
}
DEFAULT_TARGETS = ("sim:edu", "sim:virtio_msix")


@dataclass(frozen=True)
class Target:
    spec: str
    simulated: bool
    open: Callable[[], Device]

    def __str__(self) -> str:
        return self.spec


def parse_target(spec: str) -> Target:
    """A Target for ``spec``; a VfioHilError that lists the forms if it is none."""
    text = spec.strip()
    if text.startswith("sim:"):
        preset, _, kernel = text[4:].partition("@")
        factory = SIM_PRESETS.get(preset)
        if factory is None:
            raise VfioHilError(
                f"unknown simulated device {preset!r}",
                f"use one of: {', '.join('sim:' + p for p in SIM_PRESETS)} (optionally @KERNEL)",
            )
        kernel = kernel or DEFAULT_KERNEL
        return Target(f"sim:{preset}@{kernel}", True, lambda: factory(kernel))
    from vfio_hil._host import open_device, parse_address

    address = parse_address(text)
    return Target(address, False, lambda: open_device(address))


def targets_from_env() -> list[Target]:
    """VFIO_HIL_DEVICES (real, comma-separated) and VFIO_HIL_SIM, else the sim presets."""
    real = [a for a in os.environ.get("VFIO_HIL_DEVICES", "").split(",") if a.strip()]
    sims = [s for s in os.environ.get("VFIO_HIL_SIM", "").split(",") if s.strip()]
    specs = real + [s if s.startswith("sim:") else f"sim:{s}" for s in sims]
    return [parse_target(s) for s in (specs or DEFAULT_TARGETS)]
