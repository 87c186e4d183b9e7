"""The ci profile keeps reaching every cell it reached when the list was made.

Not a percentage: a listed cell that is no longer reached is named, so a
change to a rule, a strategy or a weight that stops the fuzzer going there
shows which corner of the semantics went unchecked.  And every cell the
fuzzer reaches is one the model's walk found reachable (the walk is what
the unreachable list is derived from).
"""

from __future__ import annotations

import pytest

from vfio_hil._coverage.baseline import PRESETS, ci_coverage, must_reach


def test_every_preset_has_a_section() -> None:
    assert sorted(must_reach()) == sorted(PRESETS)


@pytest.mark.parametrize("spec", PRESETS)
def test_ci_profile_still_reaches_the_listed_cells(spec: str) -> None:
    found = ci_coverage(spec)
    lost = [str(cell) for cell in must_reach()[spec] if cell not in found.counts]
    assert not lost, (
        f"the ci profile on {spec} no longer reaches {len(lost)} listed cells:\n  "
        + "\n  ".join(lost)
    )
    assert not found.outside, f"reached but not in the model's walk: {found.outside}"
