"""Command-line options and ini keys.

Which of them names the targets is decided by ``vfio_hil._targets.select_specs``
(``--vfio-device`` beats ``VFIO_HIL_DEVICES`` beats the ``vfio_devices`` ini key;
``--vfio-sim`` or else ``VFIO_HIL_SIM`` adds simulated devices).
"""

from __future__ import annotations

import pytest

__all__ = ["add_options", "target_specs"]

DEVICE_HELP = "a PCI device bound to vfio-pci, e.g. 0000:01:00.0 (repeatable)"
SIM_HELP = "a simulated device: edu, virtio_msix or virtio_msix_2048, optionally @KERNEL"
REQUIRE_HELP = "fail, instead of skip, a test no target can run"
BIND_HELP = (
    "bind the --vfio-device devices to vfio-pci (driver_override) for the session and give "
    "them back to their drivers at the end, also after a crashed earlier run"
)
COVERAGE_HELP = (
    "report the state-space cells (index, action, data type, range, state, outcome) the "
    "tests sent to a model, and the reachable ones they never did (terminal, JUnit XML)"
)
COVERAGE_HTML_HELP = "--vfio-coverage, and write its heat map to FILE (one static HTML page)"
INI_HELP = "PCI devices bound to vfio-pci to test (one per line)"
IOMMU_HELP = (
    "how real and lab devices are opened: auto (cdev where there is one), group "
    "(container + group), cdev (/dev/vfio/devices + iommufd), noiommu (lab: a guest "
    "without an IOMMU); a target's own ?iommu=MODE wins (default: VFIO_HIL_IOMMU, else auto)"
)
SELFTESTS_HELP = (
    "also run the kernel's VFIO selftests on each --vfio-device: one item per case, IOMMU "
    "mode and device"
)
SELFTESTS_DIR_HELP = "the `vfio-hil selftests build` to run (default: the newest one cached)"


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("vfio-hil", "VFIO interrupt tests")
    group.addoption(
        "--vfio-device", action="append", default=[], metavar="ADDRESS", help=DEVICE_HELP
    )
    group.addoption(
        "--vfio-sim", action="append", default=[], metavar="PRESET[@KERNEL]", help=SIM_HELP
    )
    group.addoption("--vfio-iommu", default=None, metavar="MODE", help=IOMMU_HELP)
    group.addoption("--vfio-require", action="store_true", default=False, help=REQUIRE_HELP)
    group.addoption("--vfio-bind", action="store_true", default=False, help=BIND_HELP)
    group.addoption("--vfio-coverage", action="store_true", default=False, help=COVERAGE_HELP)
    group.addoption("--vfio-coverage-html", default=None, metavar="FILE", help=COVERAGE_HTML_HELP)
    group.addoption("--vfio-selftests", action="store_true", default=False, help=SELFTESTS_HELP)
    group.addoption("--vfio-selftests-dir", default="auto", metavar="DIR", help=SELFTESTS_DIR_HELP)
    parser.addini("vfio_devices", INI_HELP, type="linelist", default=[])


def target_specs(config: pytest.Config) -> tuple[list[str], str]:
    """The target specs and where they came from (for messages)."""
    from vfio_hil._targets import select_specs

    chosen = select_specs(
        config.getoption("vfio_device"),
        config.getoption("vfio_sim"),
        config.getini("vfio_devices"),
        require=config.getoption("vfio_require"),
        iommu=config.getoption("vfio_iommu"),
    )
    return chosen.specs, chosen.source
