"""Long fuzz runs: the engine in chunks (``vfio_hil._fuzz.campaign``), and the
example databases a fleet shares (``VFIO_HIL_FUZZ_DB``, ``VFIO_HIL_FUZZ_DB_SHARED``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, settings
from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    GitHubArtifactDatabase,
    MultiplexedDatabase,
    ReadOnlyDatabase,
)
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from vfio_hil import stateful
from vfio_hil._cli import main as vfio_hil_main
from vfio_hil._device import Device
from vfio_hil._errors import VfioHilError
from vfio_hil._fuzz import campaign
from vfio_hil._fuzz.campaign import chunk_seed, chunk_sizes, run_campaign
from vfio_hil._fuzz.mutants import MUTANTS
from vfio_hil._fuzz.profiles import (
    DB_ENV,
    SHARED_ARTIFACT,
    SHARED_DB_ENV,
    fuzz_database,
    fuzz_settings,
)
from vfio_hil._sim.device import SimDevice
from vfio_hil.stateful import DifferentialMachine, Divergence, make_machine

# Short examples and no shrinking: these tests are about chunks, not depth.
QUICK = settings(
    fuzz_settings("dev"),
    stateful_step_count=10,
    database=None,
    report_multiple_bugs=False,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
)
MUTANT = next(m for m in MUTANTS if m.name == "mask-blocks-loopback")


class _Chunks:
    """Records each engine run a campaign starts (``DifferentialMachine.run``
    calls the engine): its max_examples, seed and settings."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.runs: list[tuple[int, int | None, settings]] = []
        real = run_state_machine_as_test

        def record(machine: type[RuleBasedStateMachine], *, settings: settings) -> None:
            seed = getattr(machine, "_hypothesis_internal_use_seed", None)
            self.runs.append((settings.max_examples, seed, settings))
            real(machine, settings=settings)

        monkeypatch.setattr(stateful, "run_state_machine_as_test", record)

    @property
    def sizes(self) -> list[int]:
        return [size for size, _, _ in self.runs]

    @property
    def seeds(self) -> list[int | None]:
        return [seed for _, seed, _ in self.runs]


def _sim() -> SimDevice:
    return SimDevice.virtio_msix(vectors=8, kernel="6.12")


def _against_mutant(chosen: settings, **kw: Any) -> type[DifferentialMachine]:
    def twin(_: Device) -> SimDevice:
        return MUTANT.device(MUTANT.model)

    return make_machine(MUTANT.device, twin, profile=None, settings=chosen, export=False, **kw)


def test_chunk_sizes_add_up_and_chunk_seeds_differ() -> None:
    assert chunk_sizes(100_000, 1000) == [1000] * 100
    assert chunk_sizes(2500, 1000) == [1000, 1000, 500]
    assert chunk_sizes(7, 10) == [7]
    with pytest.raises(ValueError, match="positive"):
        chunk_sizes(10, 0)
    assert chunk_seed(42, 0) == 42  # a run's first chunk draws from the run's seed
    seeds = [chunk_seed(42, k) for k in range(200)]
    assert len(set(seeds)) == 200
    assert seeds[1:] != [chunk_seed(43, k) for k in range(1, 200)]
    assert chunk_seed(42, 7) == chunk_seed(42, 7)


def test_a_run_within_one_chunk_is_the_plain_engine_run(monkeypatch: pytest.MonkeyPatch) -> None:
    assert fuzz_settings("ci").max_examples <= campaign.CHUNK_EXAMPLES  # ci is never chunked
    chunks = _Chunks(monkeypatch)
    machine = make_machine(_sim, settings=settings(fuzz_settings("ci"), max_examples=3))
    try:
        assert run_campaign(machine) == 1
    finally:
        machine.close_device()
    # The call as before chunking: the machine's own settings, make_machine's seed.
    assert len(chunks.runs) == 1
    assert chunks.runs[0][2] is machine.TestCase.settings
    assert chunks.seeds == [0]  # CI_SEED


def test_the_command_runs_the_ci_sample_the_machine_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # `vfio-hil fuzz` (ci profile, seed 0) and DifferentialMachine.run, which
    # the machine's TestCase and the mutant bench use, play the same examples.
    assert vfio_hil_main(["fuzz", "--sim", "virtio_msix:8@6.12", "--max-examples", "15"]) == 0
    shown = capsys.readouterr().out.split("agree; ")[1].split(" steps")[0]
    machine = make_machine(_sim, settings=settings(fuzz_settings("ci"), max_examples=15))
    try:
        machine.run()
    finally:
        machine.close_device()
    assert shown == f"{machine.stats().examples} examples, {machine.stats().steps}"


def test_a_chunked_run_adds_its_chunks_up(monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = _Chunks(monkeypatch)
    machine = make_machine(_sim, settings=settings(QUICK, max_examples=23), seed=5, export=False)
    try:
        assert run_campaign(machine, seed=5, chunk=10) == 3
    finally:
        machine.close_device()
    assert chunks.sizes == [10, 10, 3]
    assert chunks.seeds == [5, chunk_seed(5, 1), chunk_seed(5, 2)]
    assert getattr(machine, "_hypothesis_internal_use_seed", None) == 5  # as make_machine set it
    stats = machine.stats()
    # Hypothesis counts valid examples; the machine counts every one it began.
    assert stats.examples >= 23
    assert stats.steps > 0
    assert stats.first_failure is None


def test_a_seeded_chunked_run_repeats_itself() -> None:
    def run() -> tuple[int, int]:
        machine = make_machine(_sim, settings=settings(QUICK, max_examples=12), export=False)
        try:
            run_campaign(machine, seed=9, chunk=4)
        finally:
            machine.close_device()
        return machine.stats().examples, machine.stats().steps

    assert run() == run()


def test_a_random_chunked_run_gives_each_chunk_a_seed_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chunks = _Chunks(monkeypatch)
    machine = make_machine(_sim, settings=settings(QUICK, max_examples=9), export=False)
    try:
        run_campaign(machine, chunk=3)
    finally:
        machine.close_device()
    assert len(set(chunks.seeds)) == 3
    assert None not in chunks.seeds


def test_a_chunked_run_finds_a_mutant_and_stops_at_it(monkeypatch: pytest.MonkeyPatch) -> None:
    chunks = _Chunks(monkeypatch)
    machine = _against_mutant(settings(QUICK, max_examples=300), seed=1)
    try:
        with pytest.raises(Divergence):
            run_campaign(machine, seed=1, chunk=3)
    finally:
        machine.close_device()
    stats = machine.stats()
    assert stats.first_failure is not None
    assert len(chunks.runs) > 1, "found in the first chunk: the test shows nothing"
    assert len(chunks.runs) < 300 // 3  # no chunk ran after the failing one
    found_at = stats.first_failure[0]  # counted across the chunks
    assert found_at > 3
    assert stats.examples <= found_at + 1  # nor more examples (hypothesis replays it once)


def test_the_database_carries_a_failure_into_the_next_run(tmp_path: Path) -> None:
    # Unseeded make_machine keeps the database; run_campaign still seeds each chunk.
    chosen = settings(QUICK, max_examples=400, database=DirectoryBasedExampleDatabase(tmp_path))
    first = _against_mutant(chosen)
    try:
        with pytest.raises(Divergence):
            run_campaign(first, seed=1, chunk=5)
    finally:
        first.close_device()
    assert list(tmp_path.iterdir()), "the failure was saved"
    again = _against_mutant(chosen)
    try:
        with pytest.raises(Divergence):
            run_campaign(again, seed=2, chunk=5)
    finally:
        again.close_device()
    first_failure = again.stats().first_failure
    assert first_failure is not None
    assert first_failure[0] == 1


def test_the_fuzz_command_runs_in_chunks(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    chunks = _Chunks(monkeypatch)
    monkeypatch.setattr(campaign, "CHUNK_EXAMPLES", 4)
    argv = ["fuzz", "--sim", "virtio_msix:8@6.12", "--profile", "fuzz"]
    assert vfio_hil_main([*argv, "--max-examples", "6", "--seed", "3"]) == 0
    assert chunks.sizes == [4, 2]
    assert chunks.seeds == [3, chunk_seed(3, 1)]
    out = capsys.readouterr().out
    examples = int(out.split("agree; ")[1].split(" examples")[0])
    assert examples >= 6


# --- the databases -----------------------------------------------------------------


def test_no_variable_leaves_hypothesis_default() -> None:
    assert fuzz_database({}) is None
    assert fuzz_database({DB_ENV: "", SHARED_DB_ENV: " , "}) is None


def test_a_local_directory_alone_is_a_directory_database(tmp_path: Path) -> None:
    assert fuzz_database({DB_ENV: str(tmp_path)}) == DirectoryBasedExampleDatabase(tmp_path)


def test_shared_databases_are_read_and_never_written(tmp_path: Path) -> None:
    local, shared = tmp_path / "local", tmp_path / "shared"
    shared.mkdir()
    DirectoryBasedExampleDatabase(shared).save(b"key", b"from the fleet")
    before = sorted(p.relative_to(shared) for p in shared.rglob("*"))
    database = fuzz_database({DB_ENV: str(local), SHARED_DB_ENV: str(shared)})
    assert database == MultiplexedDatabase(
        DirectoryBasedExampleDatabase(local),
        ReadOnlyDatabase(DirectoryBasedExampleDatabase(shared)),
    )
    assert database is not None
    assert list(database.fetch(b"key")) == [b"from the fleet"]
    database.save(b"key", b"found here")
    assert sorted(database.fetch(b"key")) == [b"found here", b"from the fleet"]
    assert list(DirectoryBasedExampleDatabase(local).fetch(b"key")) == [b"found here"]
    assert sorted(p.relative_to(shared) for p in shared.rglob("*")) == before


def test_a_github_artifact_is_read_beside_the_local_database(tmp_path: Path) -> None:
    # Hypothesis' own construction (default cache path) is the expected value.
    environ = {DB_ENV: str(tmp_path), SHARED_DB_ENV: "github:octo/vfio-tests, github:o/r/nightly"}
    assert fuzz_database(environ) == MultiplexedDatabase(
        DirectoryBasedExampleDatabase(tmp_path),
        ReadOnlyDatabase(GitHubArtifactDatabase("octo", "vfio-tests", SHARED_ARTIFACT)),
        ReadOnlyDatabase(GitHubArtifactDatabase("o", "r", "nightly")),
    )
    # Without VFIO_HIL_FUZZ_DB the local side is hypothesis' default database,
    # which under CI=true (hypothesis' own "ci" profile) is none at all.
    default = settings().database
    local = [default] if default is not None else []
    assert fuzz_database({SHARED_DB_ENV: "github:o/r"}) == MultiplexedDatabase(
        *local, ReadOnlyDatabase(GitHubArtifactDatabase("o", "r", SHARED_ARTIFACT))
    )


def test_the_profiles_use_the_shared_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(DB_ENV, str(tmp_path / "db"))
    monkeypatch.setenv(SHARED_DB_ENV, str(tmp_path))
    assert isinstance(fuzz_settings("fuzz").database, MultiplexedDatabase)
    assert fuzz_settings("ci").database is None  # derandomized: never a database


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        (SHARED_DB_ENV, "github:octo", "is not github:OWNER/REPO[/ARTIFACT]"),
        (SHARED_DB_ENV, "github:octo/repo/a/b", "is not github:OWNER/REPO[/ARTIFACT]"),
        (SHARED_DB_ENV, "/nonexistent/fleet-db", "nor an existing directory"),
        (DB_ENV, __file__, "is not a directory"),
    ],
)
def test_a_bad_database_variable_is_a_clear_error(
    name: str,
    value: str,
    says: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(VfioHilError, match=f"^{name}: .*{says}".replace("[", r"\[")):
        fuzz_database({name: value})
    monkeypatch.setenv(name, value)
    # Before any example runs, whatever the profile.
    assert vfio_hil_main(["fuzz", "--sim", "edu", "--profile", "ci"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vfio-hil fuzz: {name}: ")
    assert "hint:" in err
