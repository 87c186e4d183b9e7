"""The twin: a SimDevice that looks like a given device from user space.

One builder for every caller (the plugin's model, the differential check,
the scenario player, the fuzzer): the twin's hardware is what GET_IRQ_INFO,
GET_INFO and config space say, plus the device's ``Platform`` facts; its
kernel is the device's profile unless one is named.  Built from a
SimDevice it is that SimDevice's configuration again (a test checks this),
so comparing a simulation with its twin never compares two different builds.
"""

from __future__ import annotations

import struct

from vfio_hil import _uapi as u
from vfio_hil._device import Device
from vfio_hil._errors import VfioError
from vfio_hil._hw import (
    CAP_ID_EXP,
    CMD_INTX_DISABLE,
    PCI_CAPABILITY_LIST,
    PCI_COMMAND,
    PCI_STATUS,
    STATUS_CAP_LIST,
)
from vfio_hil._irq import IrqIndex, IrqInfo, IrqInfoFlag
from vfio_hil._model import KernelProfile, PciFunction, VfioPciModel
from vfio_hil._sim.device import SimDevice

__all__ = ["function_of", "irq_counts", "irq_table", "twin_of"]


def irq_table(device: Device) -> dict[int, IrqInfo]:
    """GET_IRQ_INFO of every index; indexes that answer EINVAL are absent."""
    table = {}
    for index in IrqIndex:
        try:
            table[int(index)] = device.irq_info(index)
        except VfioError:  # ERR on conventional PCI before 7.3, say
            continue
    return table


def irq_counts(device: Device) -> dict[int, int]:
    """GET_IRQ_INFO counts by index; indexes that answer EINVAL are absent."""
    return {index: info.count for index, info in irq_table(device).items()}


def _is_pcie(device: Device) -> bool:
    """Walk the capability list in config space looking for PCI Express."""
    cfg = u.VFIO_PCI_CONFIG_REGION_INDEX
    status = struct.unpack("<H", device.read_region(cfg, PCI_STATUS, 2))[0]
    if not status & STATUS_CAP_LIST:
        return False
    pointer = device.read_region(cfg, PCI_CAPABILITY_LIST, 1)[0] & ~3
    for _ in range(48):  # the list cannot be longer; a loop would be a broken device
        if pointer < 0x40:
            return False
        cap_id, nxt = device.read_region(cfg, pointer, 2)
        if cap_id == CAP_ID_EXP:
            return True
        pointer = nxt & ~3
    return False


def function_of(device: Device) -> PciFunction:
    """The PciFunction whose GET_IRQ_INFO, GET_INFO, platform and PCI_COMMAND
    equal ``device``'s; build it right after the open, when PCI_COMMAND is
    what every open shows."""
    table = irq_table(device)
    cfg = u.VFIO_PCI_CONFIG_REGION_INDEX
    command = struct.unpack("<H", device.read_region(cfg, PCI_COMMAND, 2))[0]
    intx, msi, msix = (table.get(i) for i in (IrqIndex.INTX, IrqIndex.MSI, IrqIndex.MSIX))
    platform = device.platform
    return PciFunction(
        intx_pin=bool(intx and intx.count),
        msi_vectors=msi.count if msi else 0,
        msix_vectors=msix.count if msix else 0,
        pcie=_is_pcie(device),
        pci_2_3=platform.pci_2_3,
        dyn_msix=bool(msix and msix.count and not msix.flags & IrqInfoFlag.NORESIZE),
        host_vectors=platform.host_vectors,
        multi_msi=platform.multi_msi,
        can_reset=device.info().can_reset,
        intx_level_at_enable=platform.intx_level_at_enable,
        command_at_open=command & ~CMD_INTX_DISABLE,
    )


def twin_of(
    device: Device,
    profile: KernelProfile | None = None,
    model: type[VfioPciModel] = VfioPciModel,
) -> SimDevice:
    """A SimDevice with ``device``'s hardware, platform and (for edu) stimulus,
    answered by ``model`` (a subclass of the reference: e.g. a mutant) under
    ``profile`` (default: the device's kernel)."""
    cfg = u.VFIO_PCI_CONFIG_REGION_INDEX
    vendor, dev_id = struct.unpack("<HH", device.read_region(cfg, 0, 4))
    return SimDevice(
        function_of(device),
        kernel=profile or device.kernel,
        model=model,
        edu=device.stimulus is not None,
        name=f"twin:{device.name}",
        vendor=vendor,
        device=dev_id,
    )
