"""The fuzzer on a 2048-vector MSI-X table exercises all of it, not only its start.

A driver of a NIC or an NVMe controller enables hundreds of vectors at once
and uses the last ones as much as the first; a fuzz run on such a table must
enable, signal and tear down large ranges and the top of the table too,
while small ranges (where most partial-failure paths are) keep coming up.
"""

from __future__ import annotations

import pytest
from hypothesis import settings

from vfio_hil import IrqIndex, SimDevice
from vfio_hil import _uapi as u
from vfio_hil._fuzz.profiles import fuzz_settings
from vfio_hil._lockstep.engine import Played
from vfio_hil._lockstep.steps import SetIrqs
from vfio_hil.stateful import make_machine

N = 2048
EXAMPLES = 200  # of the ci profile's 500: a few seconds
_ENABLE = u.VFIO_IRQ_SET_ACTION_TRIGGER | u.VFIO_IRQ_SET_DATA_EVENTFD
_LOOPBACK = (
    u.VFIO_IRQ_SET_ACTION_TRIGGER | u.VFIO_IRQ_SET_DATA_NONE,
    u.VFIO_IRQ_SET_ACTION_TRIGGER | u.VFIO_IRQ_SET_DATA_BOOL,
)


def _played_on_2048_vectors() -> list[Played]:
    machine = make_machine(lambda: SimDevice.virtio_msix(N), export=False)
    played: list[Played] = []

    class Recording(machine):  # type: ignore[valid-type,misc]
        def teardown(self) -> None:
            super().teardown()
            played.extend(self.trace)

    Recording.run(settings(fuzz_settings("ci"), max_examples=EXAMPLES))
    return played


@pytest.fixture(scope="module")
def played() -> list[Played]:
    return _played_on_2048_vectors()


def _msix(played: list[Played], flags: tuple[int, ...], accepted: bool = True) -> list[SetIrqs]:
    """The MSI-X requests with these flags (``accepted``: that the kernel side took)."""
    return [
        p.step
        for p in played
        if isinstance(p.step, SetIrqs)
        and p.step.index == IrqIndex.MSIX
        and p.step.flags in flags
        and (p.kernel.result == 0 or not accepted)
    ]


def test_enables_cover_the_whole_table_and_its_upper_half(played: list[Played]) -> None:
    enables = [s for s in _msix(played, (_ENABLE,)) if s.count]
    assert any(s.start == 0 and s.count == N for s in enables), "no enable of all 2048"
    # all of the upper half in one call, and a large block wholly inside it
    assert any(s.start <= N // 2 and s.start + s.count == N for s in enables)
    assert any(s.start >= N // 2 and s.count > 8 for s in enables)
    assert any(s.start + s.count == N for s in enables), "the last vector never enabled"


def test_loopbacks_other_than_whole_table_sweeps_draw_large_ranges_in_the_upper_half(
    played: list[Played],
) -> None:
    # drawn, not only accepted: most land while the index is not enabled (EINVAL)
    loopbacks = _msix(played, _LOOPBACK, accepted=False)
    partial = [s for s in loopbacks if s.count and not (s.start == 0 and s.count == N)]
    assert any(N // 2 <= s.start < N and s.count > 8 for s in partial)


def test_small_ranges_still_come_up_regularly(played: list[Played]) -> None:
    enables = [s for s in _msix(played, (_ENABLE,)) if s.count]
    small = [s for s in enables if s.count <= 8]
    assert len(small) >= len(enables) // 4, f"{len(small)} small enables of {len(enables)}"
