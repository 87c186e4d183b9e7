"""Bad target and kernel specs, from every entry point: one line, exit 2.

A kernel name must map to a known profile or fail with a usage error that
lists the known ones; a typo must never become some other kernel, and never
a traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from vfio_hil import VfioHilError
from vfio_hil._targets import parse_target, select_specs

pytest_plugins = ["pytester"]

BAD_SIMS = [
    ("sim:edu@abc", "unknown kernel 'abc'"),
    ("sim:edu@1.0", "unknown kernel '1.0'"),
    ("sim:edu@99.99", "unknown kernel '99.99'"),
    ("sim:edu@6.1@6.12", "unknown kernel '6.1@6.12'"),
    ("sim:edu@", "names no kernel"),
    ("sim:virtio_msix:99999", "bad MSI-X vector count '99999'"),
    ("sim:virtio_msix:0", "bad MSI-X vector count '0'"),
    ("sim:virtio_msix:\u00b2", "bad MSI-X vector count '\u00b2'"),  # isdigit() says yes
    ("sim:edu:4", "has a fixed size"),
    ("sim:nosuch", "unknown simulated device 'nosuch'"),
    ("edu", "a simulated device is written sim:edu"),
    ("virtio_msix:8@6.1", "a simulated device is written sim:virtio_msix:8@6.1"),
    ("nonsense", "malformed PCI address"),
]


@pytest.mark.parametrize(("spec", "says"), BAD_SIMS)
def test_parse_target_names_what_is_wrong(spec: str, says: str) -> None:
    with pytest.raises(VfioHilError) as caught:
        parse_target(spec)
    assert says in str(caught.value)


def test_an_unknown_kernel_lists_the_known_ones() -> None:
    with pytest.raises(VfioHilError) as caught:
        parse_target("sim:edu@abc")
    for known in ("6.1", "6.12", "7.3"):
        assert known in str(caught.value)


@pytest.mark.parametrize("spec", ["sim:edu@6.1", "sim:edu@6.1.50", "sim:virtio_msix:8@7.3"])
def test_good_kernel_specs_are_taken(spec: str) -> None:
    with parse_target(spec).open() as dev:
        assert dev.kernel.name == spec.rpartition("@")[2]


@pytest.mark.parametrize(
    "argv",
    [
        ["fuzz", "--sim", "edu@abc"],
        ["diff", "sim:edu@1.0"],
        ["info", "sim:edu@99.99"],
        ["replay", "scenarios/msix_sparse_bool.yaml", "--sim", "virtio_msix:99999"],
        ["replay", "scenarios/msix_sparse_bool.yaml", "--sim", "edu@6.1@6.12"],
        ["run", "--sim", "edu@abc"],
    ],
)
def test_the_cli_refuses_a_bad_spec_in_one_line(argv: list[str]) -> None:
    root = Path(__file__).parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "vfio_hil", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "INTERNALERROR" not in done.stderr + done.stdout


def test_pytest_refuses_a_bad_vfio_sim_as_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(vfio_device): pass")
    result = pytester.runpytest("--vfio-sim", "edu@abc", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown kernel 'abc'*(from --vfio-sim)*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_vfio_hil_sim_names_the_simulated_targets(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VFIO_HIL_DEVICES", raising=False)
    monkeypatch.setenv("VFIO_HIL_SIM", "edu@6.1")
    pytester.makepyfile("def test_x(vfio_device): pass")
    result = pytester.runpytest("-v", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*test_x?sim:edu@6.1? PASSED*"])
    result.assert_outcomes(passed=1)


@pytest.mark.parametrize("value", ["", ",", " , "])
def test_an_empty_device_list_fails_under_ci(value: str) -> None:
    env = {"VFIO_HIL_DEVICES": value, "CI": "true"}
    with pytest.raises(VfioHilError, match="names no device"):
        select_specs(environ=env)
    # Outside CI (and without --vfio-require) the simulations run, as documented.
    assert select_specs(environ={"VFIO_HIL_DEVICES": value}).specs == ["sim:edu", "sim:virtio_msix"]


def test_a_real_device_that_cannot_be_opened_stops_the_run_in_one_line(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_dev="def test_dev(vfio_device):\n    pass\n\ndef test_two(vfio_device):\n    pass\n"
    )
    result = pytester.runpytest_subprocess(
        "--vfio-device", "0000:99:00.0", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    text = result.stdout.str() + result.stderr.str()
    assert "cannot open 0000:99:00.0: no PCI device 0000:99:00.0" in text
    assert "error" not in result.parseoutcomes()  # not one error per test


def test_a_set_but_empty_vfio_hil_sim_fails_under_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As VFIO_HIL_DEVICES=",": a CI job must not run the default simulations
    # instead of the ones it meant.
    pytester.makepyfile(test_dev="def test_dev(vfio_device):\n    pass\n")
    monkeypatch.setenv("VFIO_HIL_SIM", ",")
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "VFIO_HIL_SIM is set (',') but names no simulated device" in (
        result.stdout.str() + result.stderr.str()
    )


def test_bench_loopback_without_devices_is_a_setup_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vfio_hil", "bench", "loopback"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "VFIO_HIL_DEVICES": ","},
    )
    assert done.returncode == 2  # was 1, the code of a failed measurement
    assert "VFIO_HIL_DEVICES names none" in done.stderr
