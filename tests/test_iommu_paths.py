"""Choosing how a device is opened: a target's ``?iommu=``, the option, the variable.

A user picks the open path per target (``0000:01:00.0?iommu=cdev``), for the
whole run (``--vfio-iommu``, ``vfio-hil run|fuzz --iommu``) or from the
environment (``VFIO_HIL_IOMMU``); the target's own choice wins.  That the
chosen path is the one the kernel then sees is checked in the lab, where all
three exist (tests/lab/test_lab_kernels.py on the iommufd kernel).
"""

from __future__ import annotations

import pytest

from vfio_hil._cli import main as vfio_hil_main
from vfio_hil._errors import VfioHilError
from vfio_hil._exit import Exit
from vfio_hil._targets import parse_target, select_specs, with_iommu

pytest_plugins = ["pytester"]


@pytest.mark.parametrize("mode", ["group", "cdev"])
def test_an_address_names_its_open_path(mode: str) -> None:
    target = parse_target(f"01:00.0?iommu={mode}")
    assert target.spec == f"0000:01:00.0?iommu={mode}"
    assert not target.simulated


def test_auto_is_the_default_and_not_written() -> None:
    assert parse_target("0000:01:00.0?iommu=auto").spec == "0000:01:00.0"


@pytest.mark.parametrize(
    "spec",
    [
        "0000:01:00.0?iommu=type1",  # not a path
        "0000:01:00.0?iommus=cdev",  # not the key
        "0000:01:00.0?iommu=",
        "0000:01:00.0?iommu=noiommu",  # a real device is in NOIOMMU mode or not
    ],
)
def test_a_bad_path_is_an_error_that_lists_the_paths(spec: str) -> None:
    with pytest.raises(VfioHilError, match="iommu=MODE") as info:
        parse_target(spec)
    assert "cdev" in str(info.value)


def test_a_lab_device_without_an_iommu_is_a_target_of_its_own() -> None:
    assert parse_target("lab:iommufd/edu?iommu=noiommu").spec == "lab:iommufd/edu?iommu=noiommu"
    assert parse_target("lab:iommufd/edu?iommu=cdev").spec == "lab:iommufd/edu?iommu=cdev"
    assert parse_target("lab:iommufd/edu").spec == "lab:iommufd/edu"


def test_a_remote_device_keeps_its_path() -> None:
    target = parse_target("ssh://box/0000:01:00.0?iommu=cdev")
    assert target.spec == "ssh://box/0000:01:00.0?iommu=cdev"


def test_the_run_wide_path_applies_to_real_and_lab_targets_not_simulations() -> None:
    assert with_iommu("0000:01:00.0", "cdev") == "0000:01:00.0?iommu=cdev"
    assert with_iommu("lab:iommufd/virtio", "noiommu") == "lab:iommufd/virtio?iommu=noiommu"
    assert with_iommu("sim:edu@6.12", "cdev") == "sim:edu@6.12"
    assert with_iommu("0000:01:00.0", "noiommu") == "0000:01:00.0?iommu=group"


def test_a_targets_own_path_beats_the_run_wide_one() -> None:
    assert with_iommu("0000:01:00.0?iommu=group", "cdev") == "0000:01:00.0?iommu=group"


def test_the_option_beats_the_environment() -> None:
    env = {"VFIO_HIL_DEVICES": "0000:01:00.0", "VFIO_HIL_IOMMU": "group"}
    assert select_specs(environ=env).specs == ["0000:01:00.0?iommu=group"]
    assert select_specs(iommu="cdev", environ=env).specs == ["0000:01:00.0?iommu=cdev"]
    assert select_specs(environ={"VFIO_HIL_DEVICES": "0000:01:00.0"}).specs == ["0000:01:00.0"]


def test_a_bad_environment_path_names_the_variable() -> None:
    env = {"VFIO_HIL_DEVICES": "0000:01:00.0", "VFIO_HIL_IOMMU": "vfio"}
    with pytest.raises(VfioHilError, match="VFIO_HIL_IOMMU='vfio' is no iommu path"):
        select_specs(environ=env)


def test_the_cli_refuses_an_unknown_path(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        vfio_hil_main(["run", "--iommu", "vfio", "--sim", "edu"])
    assert info.value.code == Exit.USAGE
    assert "invalid choice: 'vfio'" in capsys.readouterr().err


def test_the_report_header_names_the_path_of_a_simulation_as_none(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile("def test_x(vfio_device):\n    assert vfio_device.info().num_irqs\n")
    result = pytester.runpytest("--vfio-sim=edu")
    result.assert_outcomes(passed=1)
    header = [ln for ln in result.outlines if ln.strip().startswith("sim:edu")]
    assert header, result.outlines
    assert "iommu=-" in header[0]
