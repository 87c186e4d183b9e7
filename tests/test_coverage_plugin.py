"""The plugin's --vfio-coverage: a suite run reports its cells in the terminal,
in JUnit XML and as a heat map; a bad path is a usage error before any test."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def _pytest(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd)


def test_suite_run_reports_cells_in_junit_and_html(tmp_path: Path) -> None:
    html, junit = tmp_path / "cov.html", tmp_path / "junit.xml"
    done = _pytest(
        "--pyargs",
        "vfio_hil.suite.test_loopback",
        "--vfio-sim",
        "edu",
        f"--vfio-coverage-html={html}",
        f"--junitxml={junit}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "vfio-hil state-space coverage" in done.stdout
    props = {p.get("name"): p.get("value") for p in ET.parse(junit).iter("property")}
    reached = props["vfio_coverage[sim:edu@6.12]"]
    got, of = map(int, reached.split("/"))
    assert 0 < got < of
    assert "INTX" in props["vfio_coverage_missed[sim:edu@6.12]"]
    assert "Never reached" in html.read_text(encoding="utf-8")


def test_an_unwritable_heat_map_is_a_usage_error(tmp_path: Path) -> None:
    done = _pytest(
        "--pyargs",
        "vfio_hil.suite.test_loopback",
        f"--vfio-coverage-html={tmp_path / 'no' / 'cov.html'}",
        cwd=tmp_path,
    )
    assert done.returncode == 4  # pytest's usage error
    assert "--vfio-coverage-html" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_test_s_get_irq_info_is_a_reached_cell(tmp_path: Path) -> None:
    # GET_IRQ_INFO is part of the contract (it was the gap a round found):
    # a test that only asks it reaches that cell and nothing else.
    (tmp_path / "test_info.py").write_text(
        "def test_info(vfio_device):\n    assert vfio_device.irq_info(2).count > 0\n"
    )
    junit = tmp_path / "junit.xml"
    done = _pytest(
        "test_info.py",
        "--vfio-sim",
        "virtio_msix",
        "--vfio-coverage",
        f"--junitxml={junit}",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    props = {p.get("name"): p.get("value") for p in ET.parse(junit).iter("property")}
    (reached,) = [v for k, v in props.items() if k.startswith("vfio_coverage[")]
    assert reached.split("/")[0] == "1"
