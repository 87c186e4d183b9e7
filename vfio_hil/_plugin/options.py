"""Command-line options and ini keys; precedence is written down once, here.

Targets: ``--vfio-device`` (repeatable) beats ``VFIO_HIL_DEVICES`` beats the
``vfio_devices`` ini key; ``--vfio-sim`` adds simulated devices.  With no
target from any of them, the embedded simulations (edu, virtio_msix) run.
"""

from __future__ import annotations

import os

import pytest

__all__ = ["add_options", "target_specs"]

DEVICE_HELP = "a PCI device bound to vfio-pci, e.g. 0000:01:00.0 (repeatable)"
SIM_HELP = "a simulated device: edu, virtio_msix or virtio_msix_2048, optionally @KERNEL"
REQUIRE_HELP = "fail, instead of skip, a test no target can run"
BIND_HELP = (
    "bind the --vfio-device devices to vfio-pci (driver_override) for the session and give "
    "them back to their drivers at the end, also after a crashed earlier run"
)
INI_HELP = "PCI devices bound to vfio-pci to test (one per line)"


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("vfio-hil", "VFIO interrupt tests")
    group.addoption(
        "--vfio-device", action="append", default=[], metavar="ADDRESS", help=DEVICE_HELP
    )
    group.addoption(
        "--vfio-sim", action="append", default=[], metavar="PRESET[@KERNEL]", help=SIM_HELP
    )
    group.addoption("--vfio-require", action="store_true", default=False, help=REQUIRE_HELP)
    group.addoption("--vfio-bind", action="store_true", default=False, help=BIND_HELP)
    parser.addini("vfio_devices", INI_HELP, type="linelist", default=[])


def target_specs(config: pytest.Config) -> tuple[list[str], str]:
    """The target specs and where they came from (for messages)."""
    devices: list[str] = config.getoption("vfio_device")
    sims = [s if s.startswith("sim:") else f"sim:{s}" for s in config.getoption("vfio_sim")]
    if devices:
        return devices + sims, "--vfio-device"
    env = [a.strip() for a in os.environ.get("VFIO_HIL_DEVICES", "").split(",") if a.strip()]
    if env:
        return env + sims, "VFIO_HIL_DEVICES"
    ini: list[str] = config.getini("vfio_devices")
    if ini:
        return list(ini) + sims, "the vfio_devices ini key"
    if sims:
        return sims, "--vfio-sim"
    return ["sim:edu", "sim:virtio_msix"], "the default simulated devices"
