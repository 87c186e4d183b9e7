"""Build a SimDevice that looks like a given device from user space."""

from __future__ import annotations

import os
import struct

from vfio_hil import _uapi as u
from vfio_hil._device import Device
from vfio_hil._errors import VfioError
from vfio_hil._irq import IrqIndex, IrqInfoFlag
from vfio_hil._model import KernelProfile, PciFunction, VfioPciModel, kernel_profile
from vfio_hil._sim.device import SimDevice
from vfio_hil._sim.edu import EDU_DEVICE, EDU_VENDOR

__all__ = ["function_of", "running_kernel_profile", "sim_twin"]

_PCI_STATUS_CAP_LIST = 0x10
_PCI_CAP_ID_EXP = 0x10


def running_kernel_profile() -> KernelProfile:
    """The profile of this machine's kernel (``uname -v`` names Debian's upstream)."""
    uname = os.uname()
    version = f"{uname.release} {uname.version}"
    return kernel_profile(version if "Debian" in version else uname.release)


def _count(device: Device, index: int) -> tuple[int, int] | None:
    try:
        info = device.irq_info(index)
    except VfioError:
        return None
    return info.count, int(info.flags)


def _is_pcie(device: Device) -> bool:
    """Walk the capability list in config space looking for PCI Express."""
    cfg = u.VFIO_PCI_CONFIG_REGION_INDEX
    status = struct.unpack("<H", device.read_region(cfg, 6, 2))[0]
    if not status & _PCI_STATUS_CAP_LIST:
        return False
    pointer = device.read_region(cfg, 0x34, 1)[0] & ~3
    for _ in range(48):  # the list cannot be longer; a loop would be a broken device
        if pointer < 0x40:
            return False
        cap_id, nxt = device.read_region(cfg, pointer, 2)
        if cap_id == _PCI_CAP_ID_EXP:
            return True
        pointer = nxt & ~3
    return False


def running_under_qemu(dmi: str = "/sys/class/dmi/id/sys_vendor") -> bool:
    try:
        with open(dmi) as f:
            return f.read().strip() == "QEMU"
    except OSError:
        return False


def function_of(device: Device, profile: KernelProfile) -> PciFunction:
    """The PciFunction whose GET_IRQ_INFO and GET_INFO equal ``device``'s."""
    intx = _count(device, IrqIndex.INTX)
    msi = _count(device, IrqIndex.MSI)
    msix = _count(device, IrqIndex.MSIX)
    return PciFunction(
        intx_pin=bool(intx and intx[0]),
        msi_vectors=msi[0] if msi else 0,
        msix_vectors=msix[0] if msix else 0,
        pcie=_is_pcie(device),
        dyn_msix=bool(msix and msix[0] and not msix[1] & IrqInfoFlag.NORESIZE),
        can_reset=device.info().can_reset,
        # QEMU's IO-APIC loses a level raised before the IRQ was requested.
        intx_level_at_enable=not running_under_qemu(),
    )


def sim_twin(
    device: Device,
    profile: KernelProfile | None = None,
    model: type[VfioPciModel] = VfioPciModel,
) -> SimDevice:
    """A SimDevice with ``device``'s IRQ capabilities and, for edu, its stimulus,
    answered by ``model`` (a subclass of the reference: e.g. a mutant)."""
    profile = profile or running_kernel_profile()
    cfg = u.VFIO_PCI_CONFIG_REGION_INDEX
    vendor, dev_id = struct.unpack("<HH", device.read_region(cfg, 0, 4))
    edu = (vendor, dev_id) == (EDU_VENDOR, EDU_DEVICE)
    return SimDevice(
        function_of(device, profile),
        kernel=profile,
        model=model,
        edu=edu,
        name=f"twin:{device.name}",
        vendor=vendor,
        device=dev_id,
    )
