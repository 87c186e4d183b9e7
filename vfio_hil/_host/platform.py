"""Facts about the machine a real device runs on: its kernel and platform."""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

from vfio_hil._device import Platform

if TYPE_CHECKING:
    from vfio_hil._model.profile import KernelProfile

__all__ = ["host_platform", "running_kernel_profile", "running_under_qemu"]


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


@functools.cache
def host_platform() -> Platform:
    """This machine's platform: QEMU's IO-APIC loses a level raised before enable."""
    return Platform(intx_level_at_enable=not running_under_qemu())
