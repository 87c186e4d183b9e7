"""Facts about the machine a real device runs on: its kernel and platform."""

from __future__ import annotations

import functools
import os
import platform
from typing import TYPE_CHECKING

from vfio_hil._device import Platform

if TYPE_CHECKING:
    from vfio_hil._model.profile import KernelProfile

__all__ = ["host_platform", "multi_msi_available", "running_kernel_profile", "running_under_qemu"]


def running_kernel_profile() -> KernelProfile:
    """The profile of this machine's kernel (``uname -v`` names Debian's upstream)."""
    from vfio_hil._model.profile import kernel_profile

    uname = os.uname()
    version = f"{uname.release} {uname.version}"
    return kernel_profile(version if "Debian" in version else uname.release)


def running_under_qemu(dmi: str = "/sys/class/dmi/id/sys_vendor") -> bool:
    try:
        with open(dmi) as f:
            return f.read().strip() == "QEMU"
    except OSError:
        return False


def multi_msi_available(interrupts: str = "/proc/interrupts") -> bool:
    """Can MSI have more than one vector here?  On x86 only through interrupt
    remapping, whose chips ``/proc/interrupts`` names ``IR-IO-APIC``,
    ``IR-PCI-MSI...``; interrupts listed and none remapped: no.  Elsewhere,
    or when nothing says: yes."""
    if platform.machine() not in ("x86_64", "i386", "i686"):
        return True
    try:
        with open(interrupts) as f:
            text = f.read()
    except OSError:
        return True
    if "IR-" in text:
        return True
    return not ("IO-APIC" in text or "PCI-MSI" in text)


@functools.cache
def host_platform() -> Platform:
    """This machine's platform: QEMU's IO-APIC loses a level raised before
    enable; without interrupt remapping MSI gets one vector."""
    return Platform(intx_level_at_enable=not running_under_qemu(), multi_msi=multi_msi_available())
