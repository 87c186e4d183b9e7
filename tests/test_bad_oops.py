"""A step the model says would oops the kernel (CVE-2024-26812 class, before
the 2024 fix) is never sent and never a traceback, from every entry point.

``sim:edu@6.1.0`` is an accepted target: its profile has the NULL-trigger
INTx loopback oops.  The differential check cuts such a case short (a real
kernel of that version would crash), a scenario stops at the step in one
line, and pytest reports it in one line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

OOPS = """\
vfio-hil: scenario/1
name: INTx loopback with no trigger
requires: {irq: [INTX]}
eventfds: 1
steps:
  - enable: {index: INTX, fds: [e0]}
  - enable: {index: INTX, fds: [-1]}
  - trigger: {index: INTX}
"""


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vfio_hil", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_diff_cuts_a_case_short_where_the_model_says_the_kernel_would_oops() -> None:
    done = _cli("diff", "sim:edu@6.1.0", "--seeds", "1", "--length", "5")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "cut short (would oops)" in done.stdout


def test_replay_stops_at_the_step_that_would_oops_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "oops.yaml"
    path.write_text(OOPS, encoding="utf-8")
    done = _cli("replay", str(path), "--sim", "edu@6.1.50")
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "Traceback" not in out
    assert f"{path}:8: step 3 (line 8) would oops this kernel" in out
    assert "CVE-2024-26812" in out
    # The same scenario on a kernel with the fix runs.
    assert _cli("replay", str(path), "--sim", "edu@6.12").returncode == 0


def test_pytest_reports_the_step_that_would_oops_in_one_line(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", oops=OOPS)
    result = pytester.runpytest_subprocess("--vfio-sim", "edu@6.1.50", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    text = result.stdout.str()
    assert "Traceback" not in text
    assert "would oops this kernel" in text


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_the_fuzzer_cuts_an_example_short_where_the_model_says_the_kernel_would_oops() -> None:
    # Seed 4 draws an any_request that enables INTx with fds [-1], then an INTx
    # loopback: before the 2024 fix that oopses. Was a KernelOops traceback,
    # then (an unmask eventfd write re-firing with no trigger) one in the
    # SimDevice's virqfd thread.
    from hypothesis import settings

    from vfio_hil import SimDevice
    from vfio_hil.stateful import make_machine

    machine = make_machine(lambda: SimDevice.edu(kernel="6.1.0"), export=False, seed=4)
    try:
        machine.run(settings(machine.TestCase.settings, max_examples=300))
    finally:
        machine.close_device()
    assert machine.stats().examples >= 300
