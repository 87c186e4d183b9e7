"""PCI_COMMAND and raw BAR access on the real kernel, and on its twin alike.

What tests/test_sim_config.py asserts of the SimDevice, measured here on the
lab's devices: the command register at open and after reopen, what a write
keeps, that a reset leaves it alone, and that a driver's first BAR write
after open (PCI_COMMAND untouched) reaches edu.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests.guest.conftest import lab_devices
from vfio_hil import Device, open_device
from vfio_hil._lockstep import twin_of

_CONFIG, _BAR0 = 7, 0
_EDU = ("0x1234", "0x11e8")


def _is_edu(address: str) -> bool:
    sysfs = Path("/sys/bus/pci/devices") / address
    return ((sysfs / "vendor").read_text().strip(), (sysfs / "device").read_text().strip()) == _EDU


def _command(dev: Device) -> int:
    return int(struct.unpack("<H", dev.read_region(_CONFIG, 4, 2))[0])


def _write_command(dev: Device, value: int) -> None:
    dev.write_region(_CONFIG, 4, struct.pack("<H", value))


def _story(dev: Device) -> list[object]:
    """What a user sees: at open, after writes, after a reset, after reopens."""
    seen: list[object] = [_command(dev)]
    for value in (0xFFFF, 0x0000, 0x0406):
        _write_command(dev, value)
        seen.append(_command(dev))
    if dev.info().can_reset:
        dev.reset()
        seen.append(("after reset", _command(dev)))
    dev = dev.reopen()
    seen.append(("reopened", _command(dev)))
    dev.close()
    return seen


@pytest.mark.parametrize("address", lab_devices() or ["none"])
def test_pci_command_story_matches_the_twin(address: str) -> None:
    dev = open_device(address)
    twin = twin_of(dev)
    real = _story(dev)
    assert real[0] == 0x0103  # what SeaBIOS and pci_enable_device() leave
    assert real[1:4] == [0x0507, 0x0000, 0x0406]
    assert real[-1] == ("reopened", 0x0103)
    assert _story(twin) == real


@pytest.mark.parametrize("address", [a for a in lab_devices() if _is_edu(a)] or ["none"])
def test_a_raw_bar_write_right_after_open_works_on_edu_and_its_twin(address: str) -> None:
    real = open_device(address)
    twin = twin_of(real)
    try:
        for dev in (real, twin):
            assert dev.read_region(_BAR0, 0, 4) == struct.pack("<I", 0x010000ED), dev.name
            dev.write_region(_BAR0, 4, struct.pack("<I", 0x12345678))
            assert dev.read_region(_BAR0, 4, 4) == struct.pack("<I", 0xEDCBA987), dev.name
    finally:
        real.close()
        twin.close()
