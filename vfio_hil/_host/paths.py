"""Where the host's sysfs, /dev and /proc live.

Real runs use ``/sys``, ``/dev`` and ``/proc``.  Tests hand ``open_device`` a
``HostPaths`` rooted in a temporary directory laid out like sysfs, so the
error paths run without a device; ioctls are never faked, only the files
that are looked at before them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["HostPaths", "default_paths", "set_default_paths"]


@dataclass(frozen=True)
class HostPaths:
    """The three roots the host code reads."""

    sys: Path = Path("/sys")
    dev: Path = Path("/dev")
    proc: Path = Path("/proc")

    @property
    def pci_devices(self) -> Path:
        return self.sys / "bus" / "pci" / "devices"

    @property
    def pci_drivers(self) -> Path:
        return self.sys / "bus" / "pci" / "drivers"

    @property
    def iommu_groups(self) -> Path:
        return self.sys / "kernel" / "iommu_groups"

    @property
    def vfio(self) -> Path:
        return self.dev / "vfio"

    @property
    def vfio_container(self) -> Path:
        return self.dev / "vfio" / "vfio"

    @property
    def vfio_cdevs(self) -> Path:
        return self.dev / "vfio" / "devices"

    @property
    def iommufd(self) -> Path:
        return self.dev / "iommu"

    def device_dir(self, address: str) -> Path:
        return self.pci_devices / address


_default = HostPaths()


def default_paths() -> HostPaths:
    """The roots used when a caller passes none."""
    return _default


def set_default_paths(paths: HostPaths) -> HostPaths:
    """Replace the module-wide default; returns the previous one (to restore)."""
    global _default
    previous, _default = _default, paths
    return previous
