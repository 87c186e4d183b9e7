"""Kernel line coverage from a booted ``iommufd-cov`` guest.

One guest of the gcov variant of the lab kernel (``vfio-hil lab build
--coverage``) with the default devices runs one INTx scenario under
``run_lab(coverage=True)``; the report must then name vfio_pci_intrs.c's
INTx functions with the calls the scenario made, and leave the MSI-X ones
(which nothing asked for) at zero.  Without QEMU or virtme-ng the test
skips and says how to get them (with CI=true it fails); without the
variant it skips unless ``VFIO_HIL_LAB_KERNELS`` names ``iommufd-cov``
(CI builds only the plain kernel).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.lab.lab_needs import find_kernel, missing, unavailable

pytestmark = pytest.mark.lab

SPEC = "iommufd-cov"
SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "intx_automask.yaml"
GUEST_TIMEOUT_S = 600.0


@pytest.mark.timeout(GUEST_TIMEOUT_S + 120)
def test_a_scenario_s_kernel_coverage_names_the_intx_paths(tmp_path: Path) -> None:
    from vfio_hil._lab import gcov
    from vfio_hil._lab.run import run_lab

    lacking = missing(SPEC)
    asked = SPEC in os.environ.get("VFIO_HIL_LAB_KERNELS", "").split()
    if lacking is not None and lacking.startswith("kernel") and not asked:
        # CI builds only the plain kernel: the variant runs where it is built or asked for.
        pytest.skip(f"needs {lacking}, or VFIO_HIL_LAB_KERNELS naming {SPEC}")
    if lacking is not None:
        unavailable(lacking)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts="]
    (result,) = run_lab(
        [find_kernel(SPEC)],
        [*command, str(SCENARIO)],
        accel=os.environ.get("VFIO_HIL_LAB_ACCEL", "auto"),
        timeout=GUEST_TIMEOUT_S,
        results_dir=tmp_path,
        echo=None,
        coverage=True,
    )
    assert result.ok, result.summary()
    directory = result.results_dir / "coverage"
    calls = {f.name: f.calls for f in gcov.report(directory).functions}
    assert calls["vfio_pci_set_irqs_ioctl"] > 0
    assert calls["vfio_pci_set_intx_trigger"] > 0
    assert calls["vfio_pci_ioctl_set_irqs"] > 0
    assert calls["vfio_set_irqs_validate_and_prepare"] > 0
    assert calls["vfio_msihandler"] == 0  # no MSI vector was ever enabled
    assert "vfio_pci_intrs.c" in (directory / "html" / "index.html").read_text()
