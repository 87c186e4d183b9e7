"""bind_to_vfio and its restore against the lab's real kernel.

The lab hands the edu device to vfio-pci before the tests start.  Each test
here takes it off (no driver, driver_override cleared), lets vfio-hil bind
it, uses it, and checks that restoring leaves it exactly as unbound as it
was.  Afterwards the device goes back to vfio-pci by the lab's own code, so
the tests that follow still have it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.guest.conftest import lab_devices
from vfio_hil import EventFd, IrqIndex, IrqSet, open_device
from vfio_hil._host.bind import bind_to_vfio, restore_stale
from vfio_hil._host.sysfs import parse_address, read_pci_device
from vfio_hil._lab import guest as lab_guest

EDU_IDS = (0x1234, 0x11E8)
SYS_PCI = Path("/sys/bus/pci/devices")


def _edu_address() -> str:
    for address in lab_devices():
        dev = read_pci_device(parse_address(address))
        if (dev.vendor, dev.device) == EDU_IDS:
            return dev.address
    pytest.skip("no edu device (1234:11e8) among VFIO_HIL_DEVICES")


def _state(address: str) -> tuple[str | None, str]:
    """(driver, driver_override as sysfs shows it)."""
    override = (SYS_PCI / address / "driver_override").read_text().strip()
    return read_pci_device(address).driver, override


@pytest.fixture
def unbound_edu() -> Iterator[str]:
    """The edu device with no driver and no driver_override; on vfio-pci again afterwards."""
    address = _edu_address()
    device_dir = SYS_PCI / address
    assert read_pci_device(address).driver == "vfio-pci", "the lab should have bound it"
    try:
        (device_dir / "driver" / "unbind").write_text(address)
        (device_dir / "driver_override").write_text("\n")
        assert _state(address) == (None, "(null)")
        yield address
    finally:
        lab_guest.bind(address)  # the lab's own code, independent of what is tested here
        lab_guest.group_node(address)  # and wait for /dev/vfio/N


def test_bind_open_and_restore(unbound_edu: str, tmp_path: Path) -> None:
    address, state = unbound_edu, tmp_path / "bound.json"

    start = time.monotonic()
    session = bind_to_vfio([address], state_file=state)
    bind_s = time.monotonic() - start
    assert _state(address) == ("vfio-pci", "vfio-pci")
    assert session.changed == [address]
    recorded = json.loads(state.read_text())["devices"]
    assert [(e["address"], e["driver"], e["driver_override"], e["changed"]) for e in recorded] == [
        (address, None, None, True)
    ]

    with open_device(address) as dev, EventFd() as efd:
        assert dev.stimulus is not None
        dev.set_irqs(IrqSet.eventfds(IrqIndex.INTX, 0, [efd]))
        dev.stimulus.raise_irq()
        assert efd.wait(2.0) == 1  # the device bound by vfio-hil interrupts
        dev.stimulus.clear_irq()
        iommu = dev.iommu

    start = time.monotonic()
    session.restore()
    restore_s = time.monotonic() - start
    assert _state(address) == (None, "(null)")  # exactly as before: unbound, no override
    assert not state.exists()
    session.restore()  # idempotent
    assert _state(address) == (None, "(null)")
    ms = f"bind {bind_s * 1000:.0f} ms, restore {restore_s * 1000:.0f} ms"
    print(f"{address}: {ms}; opened via {iommu}")


def test_restore_stale_after_a_crashed_run(unbound_edu: str, tmp_path: Path) -> None:
    """A process binds the device and dies without restoring; the next run gives it back."""
    address, state = unbound_edu, tmp_path / "bound.json"
    crash = (
        "import os, sys\n"
        "from vfio_hil._host.bind import bind_to_vfio\n"
        "bind_to_vfio([sys.argv[1]], state_file=sys.argv[2])\n"
        "os._exit(9)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", crash, address, str(state)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 9, proc.stderr
    assert _state(address) == ("vfio-pci", "vfio-pci")
    assert state.exists()

    start = time.monotonic()
    assert restore_stale(state_file=state) == [address]
    restore_s = time.monotonic() - start
    assert _state(address) == (None, "(null)")
    assert not state.exists()
    print(f"{address}: restore_stale after a crash {restore_s * 1000:.0f} ms")
