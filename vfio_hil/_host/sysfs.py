"""PCI addresses and what sysfs says about a device: ids, driver, IOMMU group.

Read-only: nothing here writes sysfs or opens a VFIO node.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from vfio_hil._errors import VfioHilError
from vfio_hil._host.paths import HostPaths, default_paths

__all__ = [
    "ADDRESS_FORM",
    "GroupMember",
    "PciDevice",
    "is_vfio_driver",
    "list_vfio_devices",
    "parse_address",
    "read_pci_device",
]

ADDRESS_FORM = "DDDD:BB:DD.F (e.g. 0000:00:03.0) or BB:DD.F (domain 0000)"
# Domains above ffff exist (Intel VMD uses 10000+), so 4-8 hex digits.
_ADDRESS = re.compile(
    r"(?:(?P<domain>[0-9a-fA-F]{4,8}):)?"
    r"(?P<bus>[0-9a-fA-F]{2}):(?P<slot>[0-9a-fA-F]{2})\.(?P<function>[0-7])"
)
_MAX_SLOT = 0x1F
# Drivers the kernel lets share a group with a vfio user (driver_managed_dma).
_HARMLESS_DRIVERS = frozenset({"pci-stub", "pcieport"})


def parse_address(text: str) -> str:
    """``"00:03.0"`` or ``"0000:00:03.0"`` -> ``"0000:00:03.0"`` (lower case)."""
    match = _ADDRESS.fullmatch(text.strip())
    if match is None or int(match["slot"], 16) > _MAX_SLOT:
        raise VfioHilError(
            f"malformed PCI address {text!r}",
            f"use the form {ADDRESS_FORM}: hex bus, device 00-1f, function 0-7;"
            " `lspci -D` lists the addresses",
        )
    domain = int(match["domain"] or "0", 16)
    return f"{domain:04x}:{match['bus'].lower()}:{match['slot'].lower()}.{match['function']}"


def is_vfio_driver(driver: str | None) -> bool:
    """vfio-pci itself or a vfio-pci variant driver (mlx5_vfio_pci, ...)."""
    return driver is not None and driver.replace("_", "-").endswith("vfio-pci")


@dataclass(frozen=True)
class GroupMember:
    """Another device in the same IOMMU group."""

    address: str
    driver: str | None

    @property
    def blocks_group(self) -> bool:
        """Bound to a host driver, which makes the group non-viable."""
        return not (
            self.driver is None or is_vfio_driver(self.driver) or self.driver in _HARMLESS_DRIVERS
        )

    def __str__(self) -> str:
        return f"{self.address} ({self.driver or 'no driver'})"


@dataclass(frozen=True)
class PciDevice:
    """One PCI function as sysfs describes it."""

    address: str
    vendor: int
    device: int
    driver: str | None
    iommu_group: str | None
    vfio_cdev: str | None
    group_members: tuple[GroupMember, ...]

    @property
    def ids(self) -> str:
        return f"{self.vendor:04x}:{self.device:04x}"

    @property
    def bound_to_vfio(self) -> bool:
        return is_vfio_driver(self.driver)

    def __str__(self) -> str:
        group = self.iommu_group if self.iommu_group is not None else "none"
        return f"{self.address} [{self.ids}] driver={self.driver or '-'} group={group}"


def _link_name(path: Path) -> str | None:
    """The basename a sysfs symlink points at, or None when there is none."""
    try:
        return os.path.basename(os.readlink(path))
    except OSError:
        return None


def _read_hex(path: Path) -> int:
    try:
        return int(path.read_text().strip(), 16)
    except (OSError, ValueError):
        return 0xFFFF  # what a config read of an absent function returns


def _vfio_cdev_name(device_dir: Path) -> str | None:
    try:
        names = sorted(os.listdir(device_dir / "vfio-dev"))
    except OSError:
        return None
    return next((n for n in names if n.startswith(("vfio", "noiommu-vfio"))), None)


def _group_members(paths: HostPaths, group: str | None, address: str) -> tuple[GroupMember, ...]:
    if group is None:
        return ()
    devices = paths.iommu_groups / group / "devices"
    try:
        names = sorted(os.listdir(devices))
    except OSError:
        return ()
    return tuple(
        GroupMember(name, _link_name(devices / name / "driver"))
        for name in names
        if name != address
    )


def read_pci_device(address: str, paths: HostPaths | None = None) -> PciDevice:
    """What sysfs says about ``address`` (already normalised by ``parse_address``)."""
    paths = paths or default_paths()
    device_dir = paths.device_dir(address)
    if not device_dir.is_dir():
        raise _no_such_device(address, paths)
    group = _link_name(device_dir / "iommu_group")
    return PciDevice(
        address=address,
        vendor=_read_hex(device_dir / "vendor"),
        device=_read_hex(device_dir / "device"),
        driver=_link_name(device_dir / "driver"),
        iommu_group=group,
        vfio_cdev=_vfio_cdev_name(device_dir),
        group_members=_group_members(paths, group, address),
    )


def list_vfio_devices(paths: HostPaths | None = None) -> list[PciDevice]:
    """Every PCI function bound to vfio-pci (or a variant), by address."""
    paths = paths or default_paths()
    try:
        addresses = sorted(os.listdir(paths.pci_devices))
    except OSError:
        return []  # no PCI bus visible (e.g. a container without /sys/bus/pci)
    found = (read_pci_device(a, paths) for a in addresses)
    return [d for d in found if d.bound_to_vfio]


def _no_such_device(address: str, paths: HostPaths) -> VfioHilError:
    bound = [d.address for d in list_vfio_devices(paths)]
    also = f"; bound to vfio-pci here: {', '.join(bound)}" if bound else ""
    return VfioHilError(
        f"no PCI device {address}: {paths.device_dir(address)} does not exist",
        "check the address with `lspci -D` (in a QEMU guest: is the device on the"
        f" command line, e.g. -device edu,addr=03.0?){also}",
    )
