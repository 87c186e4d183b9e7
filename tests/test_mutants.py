"""Bug-finding power: the state machine finds every behaviour mutant within the
``ci`` profile (stopping at the first failure; ``vfio-hil bench mutants``
also shrinks and prints the table in docs/fuzzing.md)."""

from __future__ import annotations

import pytest

from vfio_hil import VfioPciModel
from vfio_hil._bench.mutants import run_mutant
from vfio_hil._fuzz.mutants import MUTANTS, Mutant


def test_there_are_at_least_twelve_distinct_mutants() -> None:
    assert len(MUTANTS) >= 12
    assert len({m.name for m in MUTANTS}) == len({m.model for m in MUTANTS}) == len(MUTANTS)
    assert all(issubclass(m.model, VfioPciModel) and m.model is not VfioPciModel for m in MUTANTS)


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_the_ci_profile_detects_the_mutant(mutant: Mutant) -> None:
    row = run_mutant(mutant, profile="ci", shrink=False)
    assert not row.error, row.error
    assert row.detected, f"{mutant.name} survived {mutant.preset}@{mutant.kernel} in the ci profile"
