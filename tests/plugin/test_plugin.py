"""The pytest plugin, end to end through pytester: targets, fixtures, markers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

SPARSE = """
import pytest
from vfio_hil import IrqIndex, IrqSet

@pytest.mark.vfio_irq(IrqIndex.MSIX, min_count=4)
def test_sparse(vfio_device, vfio_model, eventfds):
    fds = eventfds(4)
    vfio_device.set_irqs(IrqSet.eventfds(IrqIndex.MSIX, 0, fds))
    vfio_device.set_irqs(IrqSet.trigger_bool(IrqIndex.MSIX, 0, [1, 0, 1, 0]))
    got = [f.read() for f in fds]
    assert got == [1, 0, 1, 0]
    assert got == [vfio_model.take(f) for f in fds]
"""


def test_default_targets_are_the_simulated_presets(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SPARSE)
    result = pytester.runpytest("-v", "-rs", "--strict-markers", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        [
            "vfio-hil targets:",
            "*sim:edu@6.12 [[]1234:11e8[]]*MSIX=0x9/0*",
            "*test_sparse?sim:virtio_msix@6.12? PASSED*",
            "*sim:edu@6.12: needs MSIX count >= 4; it has 0*",
        ]
    )
    result.assert_outcomes(passed=1, skipped=1)


def test_vfio_sim_selects_preset_and_kernel(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SPARSE)
    result = pytester.runpytest("--vfio-sim", "virtio_msix@6.1", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*sim:virtio_msix@6.1 *kernel=6.1 *MSIX=0x9/64*"])
    result.assert_outcomes(passed=1)


def test_vfio_require_turns_no_matching_target_into_a_failure(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SPARSE)
    result = pytester.runpytest("--vfio-sim", "edu", "--vfio-require", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*no target can run this test (--vfio-require)*"])
    result.assert_outcomes(errors=1)


def test_kernel_and_stimulus_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.vfio_kernel(">=6.5")
        def test_new(vfio_device):
            pass

        @pytest.mark.vfio_stimulus
        def test_raises(vfio_device):
            pass
        """
    )
    result = pytester.runpytest(
        "-v",
        "-rs",
        "--vfio-sim",
        "edu@6.1",
        "--vfio-sim",
        "virtio_msix@6.12",
        "-p",
        "no:cacheprovider",
    )
    result.stdout.fnmatch_lines(
        [
            "*test_new?sim:virtio_msix@6.12? PASSED*",
            "*test_raises?sim:edu@6.1? PASSED*",
            "*sim:edu@6.1: needs kernel >=6.5; it runs 6.1*",
            "*sim:virtio_msix@6.12: needs a device with a stimulus (edu)*",
        ]
    )
    result.assert_outcomes(passed=2, skipped=2)


def test_a_failed_test_leaves_the_next_a_clean_device(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from vfio_hil import IrqIndex, IrqSet

        def test_fails_halfway(vfio_device, eventfds):
            vfio_device.set_irqs(IrqSet.eventfds(IrqIndex.MSIX, 0, eventfds(2)))
            assert False, "half-way"

        def test_next_sees_msix_disabled(vfio_device, eventfds):
            # Enabling INTx works only if the previous test's MSI-X was disabled.
            vfio_device.set_irqs(IrqSet.eventfds(IrqIndex.INTX, 0, eventfds(1)))
        """
    )
    result = pytester.runpytest("--vfio-sim", "virtio_msix", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)


def test_bad_target_is_a_usage_error_naming_where_it_came_from(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(vfio_device): pass")
    result = pytester.runpytest("--vfio-sim", "nosuch", "-p", "no:cacheprovider")
    result.stderr.fnmatch_lines(["*unknown simulated device 'nosuch'*(from --vfio-sim)*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


XDIST_LOG = """
import json, os, time
import pytest

@pytest.mark.parametrize("n", range(8))
def test_hold(vfio_device, n, tmp_path_factory):
    start = time.monotonic()
    time.sleep(0.05)
    record = {
        "target": vfio_device.name,
        "worker": os.environ.get("PYTEST_XDIST_WORKER"),
        "start": start,
        "end": time.monotonic(),
    }
    with open(os.environ["HOLD_LOG"], "a") as log:
        log.write(json.dumps(record) + "\\n")
"""


def test_xdist_workers_spread_over_simulated_devices_without_machine_wide_locks(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("xdist")
    log = tmp_path / "holds.jsonl"
    monkeypatch.setenv("HOLD_LOG", str(log))
    monkeypatch.setenv("VFIO_HIL_LOCK_DIR", str(tmp_path / "locks"))
    pytester.makepyfile(XDIST_LOG)
    result = pytester.runpytest_subprocess(
        "-n", "2", "--vfio-sim", "edu", "--vfio-sim", "virtio_msix", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=16)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert {r["worker"] for r in records} == {"gw0", "gw1"}
    assert {r["target"] for r in records} == {"sim:edu", "sim:virtio_msix:64"}
    # Each worker has its own simulated device: nothing machine-wide to take.
    assert not (tmp_path / "locks").exists() or not any((tmp_path / "locks").iterdir())


HOLD_REAL = """
import sys
from vfio_hil._targets import parse_target
with parse_target("0000:00:03.0").hold():
    print("held", flush=True)
    sys.stdin.read()  # hold until the test closes our stdin
"""


def test_a_real_device_is_held_by_one_process_and_a_waiter_says_by_whom(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    monkeypatch.setenv("VFIO_HIL_LOCK_DIR", str(tmp_path / "locks"))
    first = subprocess.Popen(
        [sys.executable, "-c", HOLD_REAL],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    second = None
    try:
        assert first.stdout is not None
        assert first.stdin is not None
        assert first.stdout.readline().strip() == "held"
        second = subprocess.Popen(
            [sys.executable, "-c", HOLD_REAL],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert second.stderr is not None
        assert second.stdout is not None
        said = second.stderr.readline()  # it cannot hold the device: it says so, and waits
        assert f"pid {first.pid}" in said
        assert "waiting up to" in said
        first.stdin.close()  # the first lets go ...
        assert second.stdout.readline().strip() == "held"  # ... and the waiter has it
    finally:
        for proc in (first, second):
            if proc is not None:
                proc.kill()
                proc.wait(timeout=30)


def test_an_unusable_lock_directory_is_named(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("VFIO_HIL_LOCK_DIR", str(blocker / "locks"))
    from vfio_hil._errors import VfioHilError
    from vfio_hil._targets import parse_target

    with pytest.raises(VfioHilError) as caught, parse_target("0000:00:03.0").hold():
        pass
    assert str(blocker / "locks") in str(caught.value)
    assert "VFIO_HIL_LOCK_DIR" in str(caught.value)


def test_vfio_bind_without_devices_says_what_to_give(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(vfio_device): pass")
    result = pytester.runpytest("--vfio-bind", "-p", "no:cacheprovider")
    result.stderr.fnmatch_lines(
        ["*--vfio-bind has nothing to bind*", "*hint: give the devices with --vfio-device*"]
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_a_marker_and_a_scenario_requirement_rule_a_target_out_alike(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.vfio_irq("MSIX", 4)
        def test_needs_msix(vfio_device):
            pass
        """
    )
    pytester.makefile(
        ".yaml", needs_msix="vfio-hil: scenario/1\nrequires: {msix: 4}\nsteps:\n  - reset\n"
    )
    result = pytester.runpytest("-rs", "--vfio-sim", "edu", "-p", "no:cacheprovider")
    skips = [line for line in result.outlines if line.startswith("SKIPPED")]
    assert len(skips) == 2, result.outlines
    reasons = {line.split(": ", 1)[1] for line in skips}
    assert reasons == {"sim:edu@6.12: needs MSIX count >= 4; it has 0"}


def test_vfio_require_fails_a_scenario_no_target_can_run(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".yaml", needs_msix="vfio-hil: scenario/1\nrequires: {msix: 4}\nsteps:\n  - reset\n"
    )
    result = pytester.runpytest("--vfio-sim", "edu", "--vfio-require", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no target can run this scenario (--vfio-require)*"])


def test_a_run_without_vfio_tests_opens_and_shows_no_target(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain(): pass")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    ours = [line for line in result.outlines if "vfio-hil" in line]
    assert all(line.startswith("plugins:") for line in ours), ours  # pytest's own list
