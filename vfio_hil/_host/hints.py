"""The setup errors a user can hit, each saying what is wrong and what to do.

Every builder returns a ``VfioHilError``; the caller raises it (``from`` the
OSError or VfioError that revealed it, so the errno is kept).
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from pathlib import Path

from vfio_hil._errors import VfioHilError, errno_name
from vfio_hil._host.holders import find_holders
from vfio_hil._host.paths import HostPaths
from vfio_hil._host.sysfs import PciDevice

__all__ = [
    "busy",
    "no_dev_vfio",
    "no_iommu_group",
    "node_missing",
    "not_bound",
    "not_viable",
    "open_failed",
    "permission_denied",
]

NOIOMMU_HINT = (
    "or use unsafe no-IOMMU mode (no DMA isolation, taints the kernel, needs root):"
    " `modprobe vfio enable_unsafe_noiommu_mode=1` (or `echo Y >"
    " /sys/module/vfio/parameters/enable_unsafe_noiommu_mode`), then rebind the"
    " device to vfio-pci"
)


def bind_commands(address: str, driver: str | None, paths: HostPaths) -> str:
    """The exact shell commands that hand ``address`` to vfio-pci."""
    device_dir = paths.device_dir(address)
    lines = []
    if not (paths.pci_drivers / "vfio-pci").is_dir():
        lines.append("modprobe vfio-pci")
    lines.append(f"echo vfio-pci > {device_dir}/driver_override")
    if driver is not None:
        lines.append(f"echo {address} > {device_dir}/driver/unbind")
    lines.append(f"echo {address} > {paths.sys}/bus/pci/drivers_probe")
    return "; ".join(lines)


def not_bound(dev: PciDevice, paths: HostPaths) -> VfioHilError:
    current = f"bound to {dev.driver}" if dev.driver else "not bound to any driver"
    return VfioHilError(
        f"{dev.address} [{dev.ids}] is {current}, not vfio-pci",
        f"as root: {bind_commands(dev.address, dev.driver, paths)}",
    )


def no_dev_vfio(paths: HostPaths) -> VfioHilError:
    return VfioHilError(
        f"{paths.vfio} does not exist: the VFIO modules are not loaded",
        "load vfio-pci: `modprobe vfio-pci`; in a container, pass /dev/vfio through"
        " (e.g. --device /dev/vfio/vfio --device /dev/vfio/N)",
    )


def no_iommu_group(dev: PciDevice, paths: HostPaths) -> VfioHilError:
    return VfioHilError(
        f"{dev.address} has no IOMMU group ({paths.device_dir(dev.address)}/iommu_group"
        " is missing): the IOMMU is off or absent",
        "enable it on the kernel command line (intel_iommu=on or amd_iommu=on;"
        " a QEMU guest also needs -device intel-iommu,intremap=on with -machine"
        f" q35,kernel-irqchip=split) and reboot, {NOIOMMU_HINT}",
    )


def not_viable(dev: PciDevice, paths: HostPaths) -> VfioHilError:
    """GROUP_GET_STATUS said !VIABLE: name everyone else in the group."""
    members = dev.group_members
    listed = ", ".join(str(m) for m in members) or "none visible in sysfs"
    culprits = [m for m in members if m.blocks_group] or list(members)
    fix = " | ".join(f"{m.address}: {bind_commands(m.address, m.driver, paths)}" for m in culprits)
    return VfioHilError(
        f"IOMMU group {dev.iommu_group} of {dev.address} is not viable: every device in the"
        f" group must be bound to vfio-pci (or pci-stub, or no driver); other members: {listed}",
        (f"if the host can spare them, hand them to vfio-pci as root: {fix}; " if fix else "")
        + "or move the device to a slot with its own IOMMU group (ACS)",
    )


def permission_denied(path: Path, *, noiommu: bool = False) -> VfioHilError:
    if noiommu:
        return VfioHilError(
            f"permission denied opening {path}: no-IOMMU VFIO needs CAP_SYS_RAWIO",
            "run the tests as root",
        )
    return VfioHilError(
        f"permission denied opening {path}",
        f"run as root, or give your user the node: `sudo chown $USER {path}` (until"
        ' reboot) or a udev rule SUBSYSTEM=="vfio", OWNER="<user>" in'
        " /etc/udev/rules.d/90-vfio.rules; DMA also needs `ulimit -l` raised",
    )


def busy(paths_held: Sequence[Path], proc: Path, what: str) -> VfioHilError:
    """EBUSY: name the processes that hold any of ``paths_held``."""
    holders = find_holders(paths_held, proc)
    held = ", ".join(str(p) for p in paths_held)
    if holders:
        who = "held by " + ", ".join(
            f"{h} (this process)" if h.pid == os.getpid() else str(h) for h in holders
        )
    else:
        who = f"no holder found in {proc} (another PID namespace or container?)"
    return VfioHilError(
        f"{what} is busy (EBUSY): {held} already in use; {who}",
        "stop that process or close its device first; a VFIO group or device can be"
        " opened by one user at a time",
    )


def node_missing(path: Path, why: str) -> VfioHilError:
    return VfioHilError(f"{path} does not exist", why)


def open_failed(path: Path, exc: OSError) -> VfioHilError:
    code = exc.errno if exc.errno is not None else errno.EIO
    return VfioHilError(
        f"cannot open {path}: {errno_name(code)} ({os.strerror(code)})",
        "check `ls -l /dev/vfio` and `dmesg | tail` for what the kernel said",
    )
