"""``run_lab`` leaves no guest behind, and says how each guest went as it ends.

No kernel boots here: the guest is a shell in its own session (as virtme-run
is) with a long-lived child (as QEMU is), started by ``run_one``'s own
``Popen``; only the argv builder and the tool lookups are replaced.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from vfio_hil._exit import Exit
from vfio_hil._lab import run
from vfio_hil._lab.kernels import Kernel

# The child process: run_lab (or the CLI's run_guarded) on a fake guest that
# writes "SHELL_PID SLEEP_PID" to OUT/pids once both are running, then waits.
CHILD = r"""
import sys
from pathlib import Path

from vfio_hil._lab import run
from vfio_hil._lab.kernels import Kernel

mode, out = sys.argv[1], Path(sys.argv[2])


def fake_argv(kernel, accel, preset, kdir, memory, cpus, *more):
    say = f'echo "$$ $!" > {out}/pids.tmp && mv {out}/pids.tmp {out}/pids'
    return ["sh", "-c", f"sleep 60 & {say}; wait"]


run._argv = fake_argv
run.find_qemu = lambda: "qemu-system-x86_64"
run.find_virtme_run = lambda: ["virtme-run"]
run.pick_accel = lambda requested, kernel: "tcg"
nowhere = Path("/nonexistent")
kernel = Kernel("fake", "0.0-fake", "0.0", nowhere / "vmlinuz", nowhere, nowhere, "test")
options = {"results_dir": out / "results", "echo": None}
if mode == "cli":
    from vfio_hil._cli import lab as cli

    cli.resolve_kernels = lambda specs, refresh=False: [kernel]
    sys.exit(cli.run_guarded(["fake"], ["true"], **options))
try:
    run.run_lab([kernel], ["true"], **options)
except KeyboardInterrupt:
    sys.exit(130)
sys.exit(0)
"""


def _alive(pid: int) -> bool:
    """Running, or stopped; a zombie (killed, not yet reaped) has ended."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_for(path: Path, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear within {seconds} s")


@pytest.mark.parametrize("mode", ["api", "cli"])
def test_sigterm_to_the_caller_kills_the_guest_and_its_children(mode: str, tmp_path: Path) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids: list[int] = []
    try:
        pids = [int(p) for p in _wait_for(tmp_path / "pids", 30).split()]
        assert len(pids) == 2
        assert all(_alive(p) for p in pids)
        child.send_signal(signal.SIGTERM)  # what a CI runner's cancel sends
        _, err = child.communicate(timeout=30)
        deadline = time.monotonic() + 5
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [p for p in pids if _alive(p)] == [], f"the guest outlived run_lab\n{err}"
        # Ended by the signal itself (-15) is what used to leave the guest behind.
        assert child.returncode == Exit.INTERRUPTED, err
        if mode == "cli":
            assert "no guest is left running" in err
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for pid in pids:  # whatever survived a failure: ours, killed by id
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


# --- in-process: a guest that passes at once ----------------------------------------------


def _kernel(name: str) -> Kernel:
    nowhere = Path("/nonexistent")
    return Kernel(name, f"0.0-{name}", "0.0", nowhere / "vmlinuz", nowhere, nowhere, "test")


@pytest.fixture
def quick_guest(monkeypatch: pytest.MonkeyPatch) -> None:
    """Guests that write exit code 0 where the guest script would, and end."""

    def fake_argv(
        kernel: Kernel,
        accel: str,
        preset: object,
        kdir: Path,
        memory: str,
        cpus: int,
        iommu: str = "intel",
        extra_qemu_args: object = (),
        extra_kernel_args: object = (),
    ) -> list[str]:
        return ["sh", "-c", f"sleep 0.2; echo 0 > {kdir}/exit_code"]

    monkeypatch.setattr(run, "_argv", fake_argv)
    monkeypatch.setattr(run, "find_qemu", lambda: "qemu-system-x86_64")
    monkeypatch.setattr(run, "find_virtme_run", lambda: ["virtme-run"])
    monkeypatch.setattr(run, "pick_accel", lambda requested, kernel: "tcg")


def test_each_guest_says_its_verdict_and_time_when_it_ends(
    quick_guest: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = run.run_lab([_kernel("k1"), _kernel("k2")], ["true"], results_dir=tmp_path, echo=None)
    assert [r.verdict() for r in results] == ["PASS", "PASS"]
    lines = capsys.readouterr().err.splitlines()
    booted = [i for i, line in enumerate(lines) if re.search(r"booting k\d ", line)]
    ended = [
        i for i, line in enumerate(lines) if re.search(r"k\d \(.*\): PASS;.* total \d+\.\d s", line)
    ]
    assert len(booted) == 2, lines
    assert len(ended) == 2, lines
    # k1's verdict comes before k2 boots, not after the whole run.
    assert booted[0] < ended[0] < booted[1] < ended[1], lines


def test_the_callers_sigterm_handler_is_back_afterwards(quick_guest: None, tmp_path: Path) -> None:
    def mine(signum: int, frame: object) -> None:
        raise AssertionError("not expected to run")

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        run.run_lab([_kernel("k1")], ["true"], results_dir=tmp_path, echo=None)
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_run_lab_in_a_thread_runs_and_leaves_signals_alone(
    quick_guest: None, tmp_path: Path
) -> None:
    before = signal.getsignal(signal.SIGTERM)
    outcome: list[object] = []

    def work() -> None:
        try:
            outcome.extend(run.run_lab([_kernel("k1")], ["true"], results_dir=tmp_path, echo=None))
        except BaseException as exc:  # the assertion below shows it
            outcome.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=30)
    assert [getattr(r, "ok", r) for r in outcome] == [True]
    assert signal.getsignal(signal.SIGTERM) is before
