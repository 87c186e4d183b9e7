"""The differential state machine: agreement, detection, counterexamples that
travel (scenario file and C program), profiles and the command line."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.stateful import run_state_machine_as_test

from vfio_hil import SimDevice, VfioPciModel
from vfio_hil._diff.cases import SLOTS
from vfio_hil._fuzz.export import scenario_text
from vfio_hil._fuzz.facts import DeviceFacts
from vfio_hil._fuzz.mutants import SecondUnmaskEventfdReplaces
from vfio_hil._fuzz.profiles import DB_ENV, fuzz_settings
from vfio_hil._lockstep import Observation, Played
from vfio_hil._lockstep.steps import (
    Clear,
    Raise,
    Reopen,
    Reset,
    SetDisIntx,
    SetIrqs,
    Step,
    WriteEventfd,
)
from vfio_hil._model import kernel_profile
from vfio_hil._scenario import ExpectationError, load_scenario, parse_scenario, play_scenario
from vfio_hil._scenario.expect import Expect
from vfio_hil._scenario.write import step_yaml
from vfio_hil.cli import main as vfio_hil_main
from vfio_hil.stateful import DifferentialMachine, Divergence, make_machine
from vfio_hil.strategies import requests

QUICK = settings(fuzz_settings("ci"), max_examples=25)
VIRTIO = {0: 1, 2: 8, 3: 1, 4: 1}


def _virtio(model: type[VfioPciModel] = VfioPciModel) -> SimDevice:
    return SimDevice.virtio_msix(vectors=8, kernel="6.12", model=model)


def _run(machine: type[DifferentialMachine], chosen: settings = QUICK) -> None:
    try:
        run_state_machine_as_test(machine, settings=chosen)
    finally:
        machine.close_device()


@pytest.mark.parametrize("target", ["edu@6.1", "virtio_msix@6.12", "virtio_msix@6.1"])
def test_a_device_agrees_with_the_reference_model(target: str, tmp_path: Path) -> None:
    preset, kernel = target.split("@")
    if preset == "edu":
        machine = make_machine(lambda: SimDevice.edu(kernel=kernel), out_dir=tmp_path)
    else:
        machine = make_machine(
            lambda: SimDevice.virtio_msix(vectors=8, kernel=kernel), out_dir=tmp_path
        )
    _run(machine)
    stats = machine.stats()
    assert stats.failures == 0
    assert stats.examples >= 25
    assert stats.steps > 200
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def counterexample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A shrunk counterexample for a mutant that takes a second unmask eventfd."""
    out = tmp_path_factory.mktemp("counterexample")
    machine = make_machine(_virtio, lambda _: _virtio(SecondUnmaskEventfdReplaces), out_dir=out)
    # No shrinking here (it takes minutes; the bench shows it): the files come
    # from hypothesis' final replay of the first failing example.
    fast = settings(fuzz_settings("ci"), phases=[Phase.explicit, Phase.reuse, Phase.generate])
    with pytest.raises(Divergence):
        _run(machine, fast)
    stats = machine.stats()
    assert [p.suffix for p in stats.counterexamples] == [".yaml", ".c"]
    assert stats.final_failure == stats.last_failure
    written = stats.counterexamples
    return written[0], written[1]


def test_the_scenario_passes_on_the_device_and_fails_on_the_mutant(
    counterexample: tuple[Path, Path],
) -> None:
    scenario = load_scenario(counterexample[0])
    assert scenario.eventfds == SLOTS
    assert scenario.requires.kernels
    right = _virtio()
    play_scenario(scenario, right, right.profile)
    wrong = _virtio(SecondUnmaskEventfdReplaces)
    with pytest.raises(ExpectationError) as failed:
        play_scenario(scenario, wrong, wrong.profile)
    assert failed.value.step.number == len(scenario.steps)  # at the step that diverged


def test_replay_passes_the_counterexample_on_the_reference_device(
    counterexample: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    text = counterexample[0].read_text()
    assert "vfio-hil replay FILE --sim virtio_msix:8@6.12" in text
    assert vfio_hil_main(["replay", str(counterexample[0]), "--sim", "virtio_msix:8@6.12"]) == 0
    assert "as expected" in capsys.readouterr().out
    assert vfio_hil_main(["replay", str(counterexample[0]), "--sim", "edu@6.12"]) == 2  # no MSI-X


@pytest.mark.skipif(
    shutil.which("gcc") is None or not Path("/usr/include/linux/vfio.h").exists(),
    reason="needs gcc and <linux/vfio.h>: apt-get install gcc linux-libc-dev",
)
def test_the_c_program_compiles_cleanly_and_refuses_a_missing_device(
    counterexample: tuple[Path, Path], tmp_path: Path
) -> None:
    binary = tmp_path / "replay"
    subprocess.run(
        ["gcc", "-Wall", "-Wextra", "-Werror", "-o", str(binary), str(counterexample[1])],
        check=True,
        capture_output=True,
        timeout=60,
    )
    done = subprocess.run(
        [str(binary), "0000:ff:1f.7"], capture_output=True, text=True, timeout=10, check=False
    )
    assert done.returncode == 2, done.stderr
    assert "0000:ff:1f.7" in done.stderr
    assert subprocess.run([str(binary)], capture_output=True, check=False).returncode == 2


@settings(max_examples=200, database=None, suppress_health_check=list(HealthCheck))
@given(requests(VIRTIO))
def test_every_request_survives_the_trip_through_a_scenario_file(step: SetIrqs) -> None:
    text = f"eventfds: {SLOTS}\nsteps:\n  - {step_yaml(step)}\n    expect: {{errno: EINVAL}}\n"
    parsed = parse_scenario(text, Path("trip.yaml"))
    assert parsed.steps[0].op == step


_OTHER_STEPS = st.sampled_from(
    [
        *(Raise(1), Raise(0x80000000), Clear(), Clear(2), Reset(), Reopen()),
        *(WriteEventfd(3), SetDisIntx(True), SetDisIntx(False)),
    ]
)
_OBSERVATIONS = st.builds(
    Observation,
    st.one_of(st.integers(0, 0x7FFFFFFF), st.sampled_from(["EINVAL", "EBADF", "EBUSY"])),
    st.lists(st.integers(0, 3), min_size=SLOTS, max_size=SLOTS).map(tuple),
)
_FACTS = DeviceFacts("0000:00:0b.0", kernel_profile("6.12"), VIRTIO, True, True, True)


# No deadline: a scenario file's round trip is disk work, slow on a loaded machine.
@settings(max_examples=150, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.one_of(requests(VIRTIO), _OTHER_STEPS), _OBSERVATIONS), min_size=1))
def test_every_trace_survives_the_trip_through_a_scenario_file(
    trace: list[tuple[Step, Observation]],
) -> None:
    """Regression: a reset or reopen that observed a signal was written "- reset"
    followed by an expect, which is not YAML (found on the lab's edu)."""
    played = [Played(step, seen) for step, seen in trace]
    parsed = parse_scenario(scenario_text(played, _FACTS, "why"), Path("trace.yaml"))
    assert [s.op for s in parsed.steps] == [step for step, _ in trace]
    for got, (_, seen) in zip(parsed.steps, trace, strict=True):
        assert isinstance(got.expect, Expect)
        assert got.expect.result == seen.result
        assert got.expect.counters(SLOTS) == seen.counters


def test_profiles(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ci = settings.get_profile("vfio-hil-ci")
    assert ci.derandomize
    assert ci.deadline is None
    assert ci.database is None
    assert settings.get_profile("vfio-hil-fuzz").max_examples > fuzz_settings("dev").max_examples
    monkeypatch.setenv(DB_ENV, str(tmp_path / "db"))
    database = fuzz_settings("dev").database
    assert isinstance(database, DirectoryBasedExampleDatabase)
    assert Path(database.path) == tmp_path / "db"


def test_the_test_case_runs_under_pytest_machinery() -> None:
    machine = make_machine(lambda: SimDevice.edu(kernel="6.12"), export=False)
    machine.TestCase.settings = settings(QUICK, max_examples=5, phases=[Phase.generate])
    try:
        machine.TestCase("runTest").runTest()
    finally:
        machine.close_device()
    assert machine.stats().examples >= 5


def test_fuzz_command_reports_steps_per_second(capsys: pytest.CaptureFixture[str]) -> None:
    assert vfio_hil_main(["fuzz", "--sim", "edu@6.12", "--max-examples", "5"]) == 0
    assert "steps/s" in capsys.readouterr().out
    assert vfio_hil_main(["fuzz", "--device", "not-an-address"]) == 2


def test_the_vfio_hil_command_has_fuzz_replay_and_bench_mutants(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert vfio_hil_main(["fuzz", "--sim", "virtio_msix@6.1", "--max-examples", "3"]) == 0
    assert "sim:virtio_msix@6.1: agree; 3 examples" in capsys.readouterr().out
    name = "loopback-no-trigger-einval"
    assert vfio_hil_main(["bench", "mutants", "--only", name, "--no-shrink"]) == 0
    assert f"| {name} |" in capsys.readouterr().out
    assert vfio_hil_main(["replay", "/nonexistent.yaml"]) == 2
    assert "/nonexistent.yaml" in capsys.readouterr().err


def test_bench_command_finds_one_mutant(capsys: pytest.CaptureFixture[str]) -> None:
    name = "second-unmask-eventfd-replaces"
    assert vfio_hil_main(["bench", "mutants", "--only", name, "--no-shrink"]) == 0
    assert f"| {name} | virtio_msix@6.12 | yes |" in capsys.readouterr().out


def test_fuzz_in_the_guest_runs_the_module_on_every_guest_device(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    import vfio_hil._cli.lab as lab_cli

    seen: list[tuple[list[str] | None, list[str], dict[str, object]]] = []

    def run_guarded(kernels: list[str] | None, command: list[str], **options: object) -> int:
        seen.append((kernels, list(command), options))
        return 0

    monkeypatch.setattr(lab_cli, "run_guarded", run_guarded)
    assert vfio_hil_main(["fuzz", "--lab", "6.12", "--in-guest", "--profile", "dev"]) == 0
    assert seen == [
        (
            ["6.12"],
            [sys.executable, "-m", "vfio_hil", "fuzz", "--devices-from-env", "--profile", "dev"],
            {"timeout": 2400.0},
        )
    ]
    seen.clear()  # without an IOMMU: a guest booted so, its devices opened by their group
    assert vfio_hil_main(["fuzz", "--lab", "iommufd", "--in-guest", "--iommu", "noiommu"]) == 0
    assert seen[0][2] == {"timeout": 2400.0, "iommu": "none", "env": {"VFIO_HIL_IOMMU": "group"}}
    monkeypatch.delenv("VFIO_HIL_DEVICES", raising=False)
    assert vfio_hil_main(["fuzz", "--devices-from-env"]) == 2
