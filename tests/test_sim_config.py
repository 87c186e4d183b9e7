"""PCI_COMMAND and BAR access as vfio-pci presents them, on the SimDevice.

The expected values were measured through vfio-pci on the lab's edu and
virtio devices (6.1.192, 6.12.118, 7.2.13; tests/guest/test_config_guest.py
checks the same on the real kernel): PCI_COMMAND reads 0x0103 at every open,
whatever the last user left in it; a write keeps 0x0507 of it; a reset
leaves it alone; BAR access needs memory decoding and nothing else.
"""

from __future__ import annotations

import struct

import pytest

from vfio_hil import EventFd, IrqIndex, IrqSet, SimDevice, VfioError
from vfio_hil._diff.cases import SLOTS
from vfio_hil._lockstep import BarWrite, Lockstep, Reopen, SetCommand, SetIrqs, Side

_CONFIG, _BAR0 = 7, 0
_PRESETS = {"edu": SimDevice.edu, "virtio_msix": SimDevice.virtio_msix}


def _command(dev: SimDevice) -> int:
    return int(struct.unpack("<H", dev.read_region(_CONFIG, 4, 2))[0])


def _write_command(dev: SimDevice, value: int) -> None:
    dev.write_region(_CONFIG, 4, struct.pack("<H", value))


@pytest.mark.parametrize("kernel", ["6.1", "6.12", "7.2"])
@pytest.mark.parametrize("preset", sorted(_PRESETS))
def test_pci_command_at_open_and_after_reopen_is_io_memory_serr(preset: str, kernel: str) -> None:
    dev = _PRESETS[preset](kernel=kernel)
    assert _command(dev) == 0x0103
    for left in (0x0000, 0x0406, 0xFFFF):
        _write_command(dev, left)
        dev = dev.reopen()
        assert _command(dev) == 0x0103, f"closed with {left:#x}"
    dev.close()


def test_a_command_write_keeps_the_bits_vfio_and_the_device_implement() -> None:
    dev = SimDevice.virtio_msix()
    for written, read in [(0xFFFF, 0x0507), (0x0040, 0), (0x0200, 0), (0x0100, 0x0100)]:
        _write_command(dev, written)
        assert _command(dev) == read, f"wrote {written:#x}"
    dev.write_region(_CONFIG, 4, struct.pack("<H", 0x0103))
    dev.write_region(_CONFIG, 5, b"\x04")  # a byte write to the high half alone
    assert _command(dev) == 0x0403
    dev.close()


def test_a_reset_leaves_pci_command_as_the_user_wrote_it() -> None:
    dev = SimDevice.virtio_msix()
    _write_command(dev, 0x0406)
    dev.reset()
    assert _command(dev) == 0x0406
    dev.close()


def test_a_raw_bar_write_right_after_open_works_as_on_the_real_edu() -> None:
    # A user's driver writes BAR0 without touching PCI_COMMAND: memory
    # decoding is on at open, so edu's liveness register answers.
    dev = SimDevice.edu()
    assert dev.read_region(_BAR0, 0, 4) == struct.pack("<I", 0x010000ED)
    dev.write_region(_BAR0, 4, struct.pack("<I", 0x12345678))
    assert dev.read_region(_BAR0, 4, 4) == struct.pack("<I", 0xEDCBA987)  # ~0x12345678
    _write_command(dev, 0)
    with pytest.raises(VfioError) as err:
        dev.write_region(_BAR0, 4, struct.pack("<I", 1))
    assert err.value.errno == 5  # EIO, as vfio_pci_bar_rw() answers
    dev.close()


def test_an_msi_raised_with_bus_mastering_off_is_dropped() -> None:
    dev = SimDevice.edu()
    trigger = EventFd()
    try:
        dev.set_irqs(IrqSet.eventfds(IrqIndex.MSI, 0, [trigger]))
        dev.write_region(_BAR0, 0x60, struct.pack("<I", 1))  # master is off at open
        assert trigger.read() == 0
        dev.write_region(_BAR0, 0x64, struct.pack("<I", 1))
        _write_command(dev, 0x0107)
        dev.write_region(_BAR0, 0x60, struct.pack("<I", 1))
        assert trigger.read() == 1
    finally:
        dev.close()
        trigger.close()


def test_the_lockstep_engine_compares_pci_command_after_a_reopen() -> None:
    # A model side whose open shows another PCI_COMMAND is a disagreement.
    kernel, model = SimDevice.edu(), SimDevice.edu(command_at_open=0)
    run = Lockstep(Side(kernel, SLOTS), Side(model, SLOTS))
    try:
        assert run.play(SetCommand(0x0103)) is None  # both keep what is written
        bad = run.play(Reopen())
        assert bad is not None
        assert "PCI_COMMAND: kernel reads 0x0103, model reads 0x0000" in str(bad)
    finally:
        run.close()


def test_a_bar_write_step_is_refused_with_memory_decoding_off() -> None:
    run = Lockstep(Side(SimDevice.edu(), SLOTS), Side(SimDevice.edu(), SLOTS))
    try:
        assert run.play(SetCommand(0)) is None
        played, bad = run.step(BarWrite(0x60, 1))
        assert bad is None
        assert played.kernel.result == "EIO"
        played, bad = run.step(SetIrqs(0x21, IrqIndex.MSI, 0, 0))
        assert bad is None
    finally:
        run.close()


def test_asking_for_the_stimulus_writes_nothing() -> None:
    # The twin builder and `requires: {stimulus: true}` ask for it; bus
    # mastering must stay as the open left it (found on the lab's edu).
    dev = SimDevice.edu()
    assert dev.stimulus is not None
    assert _command(dev) == 0x0103
    dev.close()
