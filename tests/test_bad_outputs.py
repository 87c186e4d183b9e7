"""Every output either works or fails clearly, and no failure hides another.

An output directory that cannot be written is a usage error before any work,
naming the path; a divergence is still a ``Divergence`` when its
counterexample cannot be written, and says so.  ``vfio-hil diff`` bounds its
sizes, draws its sequences lazily (the same steps per seed as ever) and says
how far it got; ``vfio-hil run`` has a per-test timeout.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from vfio_hil import SimDevice, VfioPciModel
from vfio_hil._bench.mutants import run_mutant
from vfio_hil._diff import check
from vfio_hil._diff.cases import random_sequence
from vfio_hil._errors import VfioHilError
from vfio_hil._exit import Exit
from vfio_hil._fuzz.context import OUT_ENV, check_out_dir
from vfio_hil._fuzz.mutants import MUTANTS, Mutant
from vfio_hil._fuzz.profiles import fuzz_settings
from vfio_hil._lockstep.steps import Step
from vfio_hil.cli import main as vfio_hil_main
from vfio_hil.stateful import DifferentialMachine, Divergence, make_machine

# Found within a handful of examples (see docs/fuzzing.md's table).
QUICK_MUTANT = next(m for m in MUTANTS if m.name == "second-unmask-eventfd-replaces")
NO_SHRINK = settings(fuzz_settings("ci"), phases=[Phase.explicit, Phase.reuse, Phase.generate])


def _bad_dirs(tmp_path: Path) -> list[Path]:
    """Directories nobody, root included, can create: under /proc, a file, or under a file."""
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n")
    return [Path("/proc/nope"), a_file, a_file / "below"]


# --- output directories: checked before any work -------------------------------------------


@pytest.mark.parametrize("which", [0, 1, 2], ids=["under-proc", "a-file", "under-a-file"])
def test_bench_mutants_with_an_unwritable_out_is_a_usage_error_before_any_mutant_runs(
    which: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _bad_dirs(tmp_path)[which]
    code = vfio_hil_main(["bench", "mutants", "--out", str(bad)])
    out, err = capsys.readouterr()
    assert code == Exit.USAGE
    assert out == ""  # not one mutant ran
    assert len(err.strip().splitlines()) == 1, err
    assert str(bad) in err
    assert "--out" in err


@pytest.mark.parametrize("which", [0, 1, 2], ids=["under-proc", "a-file", "under-a-file"])
@pytest.mark.parametrize("how", ["--out", "VFIO_HIL_FUZZ_OUT", "VFIO_HIL_RESULTS"])
def test_fuzz_with_an_unwritable_out_is_a_usage_error_before_any_example_runs(
    which: int,
    how: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bad = _bad_dirs(tmp_path)[which]
    argv = ["fuzz", "--sim", "edu"]
    if how == "--out":
        argv += ["--out", str(bad)]
    else:  # VFIO_HIL_RESULTS: counterexamples would go to its counterexamples/
        monkeypatch.delenv("VFIO_HIL_FUZZ_OUT", raising=False)
        monkeypatch.setenv(how, str(bad))
    code = vfio_hil_main(argv)
    out, err = capsys.readouterr()
    assert code == Exit.USAGE
    assert "examples" not in out  # no run was reported: none started
    assert len(err.strip().splitlines()) == 1, err
    assert str(bad) in err
    assert how in err


def test_checking_an_output_directory_leaves_nothing_behind(tmp_path: Path) -> None:
    new = tmp_path / "new" / "deeper"
    check_out_dir(new, "--out")
    assert list(tmp_path.iterdir()) == []  # it can be created: it is made when written
    existing = tmp_path / "existing"
    existing.mkdir()
    check_out_dir(existing, "--out")
    assert list(existing.iterdir()) == []


def test_check_out_dir_names_the_path_and_where_it_came_from(tmp_path: Path) -> None:
    for bad in _bad_dirs(tmp_path):
        with pytest.raises(VfioHilError, match=f"^{OUT_ENV} {bad}: "):
            check_out_dir(bad, OUT_ENV)


# --- a divergence is never masked by a failure to write it down ---------------------------


def _mutant_machine(mutant: Mutant, out_dir: Path | None) -> type[DifferentialMachine]:
    def twin(_: object) -> SimDevice:
        return mutant.device(mutant.model)

    return make_machine(mutant.device, twin, profile=None, out_dir=out_dir, name="BadOut")


@pytest.mark.parametrize("which", [0, 2], ids=["under-proc", "under-a-file"])
def test_a_divergence_with_an_unwritable_out_dir_is_still_a_divergence(
    which: int, tmp_path: Path
) -> None:
    bad = _bad_dirs(tmp_path)[which]
    machine = _mutant_machine(QUICK_MUTANT, bad)
    try:
        with pytest.raises(Divergence) as raised:
            run_state_machine_as_test(machine, settings=NO_SHRINK)
    finally:
        machine.close_device()
    assert f"could not write the counterexample to {bad}: " in str(raised.value)
    assert "disagree" in str(raised.value)  # the finding itself is all there
    assert machine.stats().counterexamples == []


def test_an_unwritable_fuzz_out_env_does_not_hide_the_divergence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = _bad_dirs(tmp_path)[2]
    monkeypatch.setenv(OUT_ENV, str(bad))
    machine = _mutant_machine(QUICK_MUTANT, None)
    try:
        with pytest.raises(Divergence, match=f"could not write the counterexample to {bad}: "):
            run_state_machine_as_test(machine, settings=NO_SHRINK)
    finally:
        machine.close_device()


def test_the_bench_counts_a_mutant_detected_when_its_files_cannot_be_written(
    tmp_path: Path,
) -> None:
    row = run_mutant(QUICK_MUTANT, shrink=False, out_dir=_bad_dirs(tmp_path)[2])
    assert row.detected
    assert row.error == ""  # was "FileNotFoundError: ..." / "NotADirectoryError: ..."


# --- vfio-hil diff: bounded sizes, lazy sequences, progress -------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [("--length", "1000001"), ("--length", "0"), ("--seeds", "1000001"), ("--seeds", "-1")],
)
def test_diff_sizes_out_of_range_are_usage_errors(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        vfio_hil_main(["diff", "sim:edu", option, value])
    assert exited.value.code == Exit.USAGE
    assert f"argument {option}" in capsys.readouterr().err


def _canon(step: Step) -> str:
    return f"{type(step).__name__}{dataclasses.astuple(step)}"


EDU = {0: 1, 1: 1, 2: 0, 4: 1}  # GET_IRQ_INFO counts of sim:edu
VIRTIO = {0: 1, 1: 0, 2: 8, 3: 1, 4: 1}  # of sim:virtio_msix with 8 vectors
# sha256 (first 16 digits) of the first 40 steps of seeds 0..4, one _canon(step)
# a line, captured from the list-building random_sequence before it became a
# generator: recorded results name seeds, so a seed's steps must never change.
PINNED: dict[str, tuple[dict[int, int], bool, tuple[str, ...]]] = {
    "edu": (
        EDU,
        True,
        (
            "3d32b5966bbf4a28",
            "a9ecc899ac3a9b95",
            "15bed7b26a6fc08c",
            "0bd3cc651bd6349b",
            "d1430f03432aba16",
        ),
    ),
    "virtio": (
        VIRTIO,
        False,
        (
            "90a1517444f03e3a",
            "19cd34ecca695695",
            "7e389a79db5f5f5d",
            "4bbe9125517f8de6",
            "1710831a7c7ed65a",
        ),
    ),
    "no-index": (
        {},
        False,
        (
            "2bbb23ba7980976c",
            "9e3e53831fc2b712",
            "dcea4d308ae4ca0a",
            "b9e16fb53e169921",
            "f79b0a084928577d",
        ),
    ),
}
# The first steps of edu's seed 0, spelled out (the same capture).
EDU_SEED_0 = [
    "SetIrqs(34, 1, 0, 2, None, b'\\x00\\x00', None)",
    "SetDisIntx(False,)",
    "SetIrqs(17, 4, 0, 0, None, None, None)",
    "SetIrqs(36, 4, 0, 0, (), None, None)",
    "Raise(2,)",
    "SetIrqs(36, 4, 0, 0, (), None, None)",
    "Clear(4294967295,)",
    "Reset()",
]


@pytest.mark.parametrize("name", PINNED)
def test_each_seed_draws_the_same_steps_as_before(name: str) -> None:
    counts, stimulus, digests = PINNED[name]
    for seed, digest in enumerate(digests):
        # A longer sequence starts with the same steps: the length only stops the draws.
        for length in (40, 1_000_000):
            steps = random_sequence(random.Random(seed), counts, stimulus, length)
            first = [_canon(s) for _, s in zip(range(40), steps, strict=False)]
            got = hashlib.sha256("\n".join(first).encode()).hexdigest()[:16]
            assert got == digest, f"{name} seed {seed} length {length}"
    steps = random_sequence(random.Random(0), EDU, True, 8)
    assert [_canon(s) for s in steps] == EDU_SEED_0


class _RefusesAll(VfioPciModel):
    """A model that fails every SET_IRQS with EIO: the first request disagrees."""

    def set_irqs_ioctl(self, flags: int, index: int, start: int, count: int, data: bytes) -> int:
        return -5


def test_a_long_length_costs_no_memory_up_front() -> None:
    dev = SimDevice.virtio_msix(vectors=8, kernel="6.12")
    tracemalloc.start()
    try:
        report = check.run_differential(
            lambda: dev,
            twin_factory=lambda _: SimDevice.virtio_msix(
                vectors=8, kernel="6.12", model=_RefusesAll
            ),
            matrix=False,
            seeds=range(1),
            length=200_000,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.disagreements
    assert report.steps < 100
    assert peak < 5_000_000  # the steps built first: ~100 MB


def test_a_long_case_reports_progress_before_it_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(check, "PROGRESS_S", 0.05)
    seen: list[str] = []
    dev = SimDevice.virtio_msix(vectors=8, kernel="6.12")
    report = check.run_differential(
        lambda: dev,
        matrix=False,
        seeds=range(1),
        length=5000,
        progress=seen.append,
        settle_s=0.0,
    )
    assert report.cases == 1
    assert not report.disagreements
    assert any(line.startswith(f"{dev.name}: 0/1 cases, ") for line in seen), seen


def test_diff_prints_progress_every_hundred_cases(capsys: pytest.CaptureFixture[str]) -> None:
    assert vfio_hil_main(["diff", "sim:edu", "--seeds", "0"]) == Exit.OK
    out, err = capsys.readouterr()
    cases = int(out.split(" cases")[0].rsplit(" ", 1)[1])
    lines = [line for line in err.splitlines() if " cases, " in line]
    assert cases >= 100
    assert len(lines) >= cases // 100, err
    assert lines[0].startswith(f"sim:edu: 100/{cases} cases, ")


# --- vfio-hil run: a per-test timeout ------------------------------------------------------

SLEEPY = """
import os, time

def test_sleepy(pytestconfig):
    print("timeout is", pytestconfig.getini("timeout"))
    time.sleep(float(os.environ["SLEEP_S"]))
"""


def _run_sleepy(tmp_path: Path, sleep_s: float, *options: str) -> subprocess.CompletedProcess[str]:
    test = tmp_path / "test_sleepy.py"
    test.write_text(SLEEPY)
    return subprocess.run(
        [sys.executable, "-m", "vfio_hil", "run", *options, "--", "-s", str(test), "-k", "sleepy"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "SLEEP_S": str(sleep_s)},
    )


def test_run_fails_a_test_that_outlives_its_timeout(tmp_path: Path) -> None:
    started = time.monotonic()
    done = _run_sleepy(tmp_path, 60, "--timeout", "1")
    assert done.returncode == Exit.FAILED, done.stdout + done.stderr
    assert "Timeout" in done.stdout
    assert time.monotonic() - started < 45  # not the test's 60 s


def test_run_gives_every_test_300_seconds_by_default(tmp_path: Path) -> None:
    done = _run_sleepy(tmp_path, 0)
    assert done.returncode == Exit.OK, done.stdout + done.stderr
    assert "timeout is 300" in done.stdout


def test_run_timeout_must_be_a_number_of_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        vfio_hil_main(["run", "--timeout", "soon"])
    assert exited.value.code == Exit.USAGE
    assert "argument --timeout" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--timeout", "-5"),
        ("--timeout", "0"),
        ("--timeout", "nan"),
        ("--timeout", "inf"),
        ("--cpus", "0"),
        ("--memory", "bogus"),
        ("--memory", "0G"),
    ],
)
def test_lab_run_guest_settings_out_of_range_are_usage_errors(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Refused before anything boots (was: accepted, a guest with nonsense).
    with pytest.raises(SystemExit) as exited:
        vfio_hil_main(["lab", "run", option, value, "--show-command", "--", "true"])
    assert exited.value.code == Exit.USAGE
    assert f"argument {option}" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--lab", ""],
        ["fuzz", "--lab", ""],
        ["bench", "loopback", "--lab", " "],
        ["fuzz", "--sim", "edu", "--timeout", "-5"],
        ["fuzz", "--sim", "edu", "--timeout", "nan"],
    ],
    ids=repr,
)
def test_an_empty_lab_kernel_or_a_bad_timeout_is_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # An empty --lab read as "no --lab": the run went on the host instead.
    with pytest.raises(SystemExit) as exited:
        vfio_hil_main(argv)
    assert exited.value.code == Exit.USAGE
    assert "argument --" in capsys.readouterr().err


def test_fuzz_timeout_without_lab_is_refused_rather_than_ignored(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert vfio_hil_main(["fuzz", "--sim", "edu", "--timeout", "5"]) == Exit.USAGE
    assert "--timeout limits a lab guest" in capsys.readouterr().err


def test_a_reader_that_stops_early_ends_the_output_quietly() -> None:
    # `vfio-hil info sim:edu | true`: the reader is gone before the first write.
    proc = subprocess.run(
        f"{sys.executable} -m vfio_hil info sim:edu | true",
        shell=True,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0
    assert "Traceback" not in proc.stderr
    assert "BrokenPipe" not in proc.stderr
