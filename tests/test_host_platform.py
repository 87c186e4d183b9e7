"""What a real device's platform says of multi-vector MSI, read from
/proc/interrupts as the lab's guests showed it (7.2.13, x86_64 under QEMU):
with an Intel IOMMU the IO-APIC's chip is IR-IO-APIC, without one IO-APIC;
an MSI enable of three vectors then returned 0 and 1."""

from __future__ import annotations

import platform as _platform
from pathlib import Path

import pytest

from vfio_hil._host.platform import multi_msi_available

REMAPPED = """\
           CPU0       CPU1
   0:         51          0  IR-IO-APIC                  2-edge      timer
   4:          0         18  IR-IO-APIC                  4-edge      ttyS0
"""
NOT_REMAPPED = """\
           CPU0       CPU1
   0:         52          0  IO-APIC                  2-edge      timer
   4:         20          0  IO-APIC                  4-edge      ttyS0
   9:          0          1  IO-APIC                  9-fasteoi   acpi
"""

pytestmark = pytest.mark.skipif(
    _platform.machine() != "x86_64", reason="the IO-APIC lines are x86's"
)


@pytest.mark.parametrize(
    ("text", "multi"),
    [(REMAPPED, True), (NOT_REMAPPED, False), ("           CPU0\n", True)],
    ids=["interrupt-remapping", "no-remapping", "nothing-listed"],
)
def test_multi_msi_follows_interrupt_remapping(text: str, multi: bool, tmp_path: Path) -> None:
    interrupts = tmp_path / "interrupts"
    interrupts.write_text(text)
    assert multi_msi_available(str(interrupts)) is multi


def test_an_unreadable_interrupts_file_assumes_what_most_machines_have(tmp_path: Path) -> None:
    assert multi_msi_available(str(tmp_path / "missing")) is True
