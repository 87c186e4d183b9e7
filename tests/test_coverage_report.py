"""The reports a user reads: the heat map names what a run never reached; the
unreachable cells carry the kernel rule that rules them out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vfio_hil import EventFd, IrqIndex, IrqSet, SimDevice
from vfio_hil._coverage.cells import Cell
from vfio_hil._coverage.reach import explore
from vfio_hil._coverage.recorder import recording
from vfio_hil._coverage.report import coverage_of, junit_properties, table, write_html


def _edu_reach() -> tuple[SimDevice, object]:
    dev = SimDevice.edu(kernel="6.12")
    return dev, explore(dev.function, dev.profile, True)


def test_html_is_one_static_file_that_names_the_unreached_cells(tmp_path: Path) -> None:
    with SimDevice.edu(kernel="6.12") as dev, EventFd() as efd, recording() as rec:
        dev.set_irqs(IrqSet.eventfds(IrqIndex.INTX, 0, [efd]))
    found = coverage_of(rec)
    out = tmp_path / "cov.html"
    write_html(found, out)
    page = out.read_text(encoding="utf-8")
    assert "INTX TRIGGER EVENTFD end off ok" not in page.split("Never reached")[1]
    # reachable on edu, and not sent: a pending eventfd as the unmask eventfd
    assert "INTX UNMASK EVENTFD end masked+pending ok" in page.split("Never reached")[1]
    assert "<script" not in page  # nothing fetched, nothing run
    assert "1/" in table(found).splitlines()[1]  # one reachable cell reached
    (key,) = (cov.key for cov in found)
    assert dict(junit_properties(found))[f"vfio_coverage[{key}]"].startswith("1/")


def test_fuzz_cli_writes_the_heat_map(tmp_path: Path) -> None:
    out = tmp_path / "out.html"
    cmd = [sys.executable, "-m", "vfio_hil", "fuzz", "--sim", "edu", "--max-examples", "5"]
    done = subprocess.run(
        [*cmd, "--coverage-html", str(out)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "never reached" in done.stdout
    assert "Never reached" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize("where", ["missing dir", "proc"])
def test_fuzz_cli_refuses_an_unwritable_heat_map_before_the_run(tmp_path: Path, where: str) -> None:
    cmd = [sys.executable, "-m", "vfio_hil", "fuzz", "--sim", "edu"]
    # /proc: a directory access() calls writable for root, where no file can be made.
    bad = tmp_path / "no" / "such" / "cov.html" if where == "missing dir" else Path("/proc/c.html")
    done = subprocess.run(
        [*cmd, "--coverage-html", str(bad)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert "--coverage-html" in done.stderr
    assert "Traceback" not in done.stderr
    assert "examples" not in done.stdout  # refused before any fuzzing


def test_unreachable_cells_name_the_kernel_rule() -> None:
    dev, reach = _edu_reach()
    with dev:
        counts = {"INTX": 1, "MSI": 1, "MSIX": 0, "ERR": 0, "REQ": 1}
        # vfio_pci_set_intx_mask(): DATA_EVENTFD is "XXX implement me" (ENOTTY)
        why = reach.why_not(Cell("INTX", "MASK", "EVENTFD", "end", "on", "ok"), counts, True)
        assert why is not None
        assert "ENOTTY" in why
        assert "implement me" in why
        # edu has no MSI-X: vfio_pci_get_irq_count() is 0, every range is past the end
        why = reach.why_not(Cell("MSIX", "TRIGGER", "EVENTFD", "end", "off", "ok"), counts, True)
        assert why is not None
        assert "vfio_pci_get_irq_count" in why
        # past the end: V2 refuses before any handler
        why = reach.why_not(Cell("INTX", "*", "NONE", "past", "-", "ok"), counts, True)
        assert why is not None
        assert "V2" in why
        # reachable ones have no reason: a second unmask virqfd is EBUSY
        assert (
            reach.why_not(Cell("INTX", "UNMASK", "EVENTFD", "end", "on", "EBUSY"), counts, True)
            is None
        )
