"""Each lab device against its SimDevice preset: same GET_IRQ_INFO, same facts.

In the guest (``vfio-hil lab run --devices kinds -- pytest tests/guest``)
every bound device with a SimDevice preset of the same hardware is opened
next to that preset under the running kernel's profile: GET_IRQ_INFO of
every index (EINVAL included), GET_INFO's reset flag, and what config space
says that the model reads (interrupt pin, PCI_COMMAND at open, the MSI,
MSI-X and PCI Express capabilities) must be the same, and so must the
PciFunction the twin builder derives from each.
"""

from __future__ import annotations

import dataclasses
import errno
import struct
from pathlib import Path

import pytest

from tests.guest.conftest import lab_devices
from vfio_hil import _uapi as u
from vfio_hil import open_device
from vfio_hil._device import Device
from vfio_hil._errors import VfioError
from vfio_hil._host.platform import running_kernel_profile
from vfio_hil._hw import (
    CAP_ID_EXP,
    CAP_ID_MSI,
    CAP_ID_MSIX,
    PCI_CAPABILITY_LIST,
    PCI_COMMAND,
    PCI_INTERRUPT_PIN,
    PCI_STATUS,
    STATUS_CAP_LIST,
)
from vfio_hil._lockstep.twin import function_of
from vfio_hil._targets import SIM_PRESETS

# (vendor:device, is a VF) -> the sim preset of the same hardware.
SIM_OF = {
    ("1b36:0010", True): "nvme_vf",
    ("1033:0194", False): "xhci_msi",
    ("8086:10d3", False): "e1000e",
    ("1234:11e8", False): "edu",
    ("1af4:1044", False): "virtio_msix",  # the default preset's 64 vectors
}
CFG = u.VFIO_PCI_CONFIG_REGION_INDEX
MODEL_CAPS = (CAP_ID_EXP, CAP_ID_MSI, CAP_ID_MSIX)


def _preset_of(address: str) -> str | None:
    dev = Path("/sys/bus/pci/devices") / address
    if not dev.exists():
        return None
    vendor = (dev / "vendor").read_text().strip().removeprefix("0x")
    device = (dev / "device").read_text().strip().removeprefix("0x")
    return SIM_OF.get((f"{vendor}:{device}", (dev / "physfn").exists()))


def _irq_answers(device: Device) -> dict[int, tuple[int, int] | str]:
    answers: dict[int, tuple[int, int] | str] = {}
    for index in range(u.VFIO_PCI_NUM_IRQS + 1):  # one past the end: EINVAL on both
        try:
            info = device.irq_info(index)
            answers[index] = (int(info.flags), info.count)
        except VfioError as exc:
            answers[index] = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return answers


def _config_facts(device: Device) -> dict[str, object]:
    def word(offset: int) -> int:
        return int(struct.unpack("<H", device.read_region(CFG, offset, 2))[0])

    caps: set[int] = set()
    if word(PCI_STATUS) & STATUS_CAP_LIST:
        pointer = device.read_region(CFG, PCI_CAPABILITY_LIST, 1)[0] & ~3
        for _ in range(48):
            if pointer < 0x40:
                break
            cap_id, nxt = device.read_region(CFG, pointer, 2)
            caps.add(cap_id)
            pointer = nxt & ~3
    return {
        "ids": device.read_region(CFG, 0, 4).hex(),
        "interrupt pin": device.read_region(CFG, PCI_INTERRUPT_PIN, 1)[0],
        "PCI_COMMAND at open": word(PCI_COMMAND),
        "capabilities the model reads": sorted(caps & set(MODEL_CAPS)),
        "can reset": device.info().can_reset,
    }


@pytest.mark.parametrize("address", lab_devices() or ["none"])
def test_sim_preset_matches_the_lab_device(address: str) -> None:
    preset = _preset_of(address)
    if preset is None:
        pytest.skip(f"{address}: no SimDevice preset of this hardware")
    factory, _ = SIM_PRESETS[preset]
    with open_device(address) as real, factory(running_kernel_profile(), None) as sim:
        real_facts, sim_facts = _config_facts(real), _config_facts(sim)
        assert sim_facts == real_facts, f"sim:{preset} vs {address}"
        assert _irq_answers(sim) == _irq_answers(real), f"sim:{preset} vs {address}"
        real_fn, sim_fn = function_of(real), function_of(sim)
        # Multi-vector MSI is the machine's, not the device's (x86: interrupt
        # remapping): the lab has it with its IOMMU, not without one.
        assert real_fn.multi_msi is (real.iommu != "noiommu"), f"{address} on {real.iommu}"
        same_machine = dataclasses.replace(real_fn, multi_msi=sim_fn.multi_msi)
        assert sim_fn == same_machine, f"sim:{preset} vs {address}"
