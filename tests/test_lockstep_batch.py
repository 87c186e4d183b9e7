"""Batched lockstep: one round trip for several steps, the same verdicts.

The rules choose steps from the model alone, so a kernel side may lag a
batch behind (``Lockstep.push``/``flush``).  What must not change: each step
is compared as before, a disagreement names the step where it happened, and
a kernel that disagreed is sent nothing more (it is in a state no model
vouches for).  The kernel side here is a SimDevice with the reference model,
its model side a mutant (tests/test_mutant_witnesses.py has the witnesses).
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import settings

from vfio_hil._agent import AgentChannel
from vfio_hil._diff.cases import SLOTS
from vfio_hil._fuzz.mutants import MUTANTS
from vfio_hil._lockstep import GetIrqInfo, Lockstep, Reset, SetIrqs, Side, Step
from vfio_hil._lockstep.engine import Disagreement, Expected, Observation, Played
from vfio_hil._lockstep.twin import twin_of
from vfio_hil.stateful import Divergence, make_machine

MSIX = 2
_NONE, _FDS = 0x21, 0x24
BOOL_ONLY_ONE = next(m for m in MUTANTS if m.name == "bool-only-one")

# Agreeing steps, then bool-only-one's witness (the mutant signals only the
# first vector for DATA_BOOL 0x80), then more steps that must not be played.
AGREE: list[Step] = [GetIrqInfo(MSIX), SetIrqs(_FDS, MSIX, 0, 1, fds=("e0",))]
WITNESS: list[Step] = [SetIrqs(0x22, MSIX, 0, 1, bools=b"\x80")]
AFTER: list[Step] = [Reset(), SetIrqs(_NONE, MSIX, 0, 1), GetIrqInfo(MSIX)]


class _Counting(Side):
    """A local side that remembers what it was asked to play, and batches."""

    batch = 8

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.asked: list[Step] = []

    def observe_many(self, items: Sequence[Expected]) -> list[Observation]:
        seen = super().observe_many(items)
        self.asked += [item.step for item in items[: len(seen)]]
        return seen


def _run(model: bool) -> tuple[Lockstep, _Counting]:
    kernel = _Counting(BOOL_ONLY_ONE.device(), SLOTS)
    twin = BOOL_ONLY_ONE.device(BOOL_ONLY_ONE.model) if model else BOOL_ONLY_ONE.device()
    return Lockstep(kernel, Side(twin, SLOTS)), kernel


def _batched(run: Lockstep, steps: list[Step]) -> tuple[list[Played], Disagreement | None]:
    """Push every step, flush once, close the run."""
    try:
        for step in steps:
            run.push(step)
        return run.flush()
    finally:
        run.close()


def test_a_batch_names_the_step_that_disagreed_and_plays_nothing_after_it() -> None:
    run, kernel = _run(model=True)
    try:
        for step in AGREE + WITNESS + AFTER:
            run.push(step)
        assert run.due is False  # 6 of 8
        played, bad = run.flush()
    finally:
        run.close()
    assert bad is not None
    assert bad.step_no == len(AGREE) + 1
    assert bad.step == WITNESS[0]
    assert [p.step for p in played] == AGREE + WITNESS
    assert kernel.asked == AGREE + WITNESS  # the reset and after: never sent
    assert run.queued == 0


def test_one_step_at_a_time_and_one_batch_give_the_same_disagreement() -> None:
    one_run, _ = _run(model=True)
    try:
        singles = [one_run.step(step) for step in AGREE + WITNESS]
    finally:
        one_run.close()
    played, bad = _batched(_run(model=True)[0], AGREE + WITNESS + AFTER)
    assert singles[-1][1] == bad
    assert [p for p, _ in singles] == played


def test_a_batch_of_agreeing_steps_is_all_played_and_agrees() -> None:
    run, kernel = _run(model=False)
    played, bad = _batched(run, AGREE + WITNESS + AFTER)
    assert bad is None
    assert kernel.asked == AGREE + WITNESS + AFTER == [p.step for p in played]


def _machine(agent: AgentChannel, model: type | None, seed: int) -> type:
    return make_machine(
        lambda: agent.open("sim:virtio_msix:8@6.12"),
        twin_factory=lambda dev: twin_of(dev, model=model) if model else twin_of(dev),
        export=False,
        seed=seed,
    )


def _shrunk(agent: AgentChannel, batch: int) -> str:
    agent.batch = batch
    machine = _machine(agent, BOOL_ONLY_ONE.model, seed=3)
    quick = settings(max_examples=300, stateful_step_count=30, database=None, deadline=None)
    try:
        with pytest.raises(Divergence) as caught:
            machine.run(quick)
    finally:
        machine.close_device()
    return str(caught.value)


def test_a_failure_found_in_batches_is_shrunk_step_by_step(agent: AgentChannel) -> None:
    # Shrinking a failure that surfaced at the end of its batch left 15 steps
    # where one step at a time leaves 5 (the same seed); the shrink runs step
    # by step, so it ends as short, on the same finding.
    one, batched = _shrunk(agent, 1), _shrunk(agent, 32)
    steps = [int(text.split(" disagree after ")[1].split()[0]) for text in (one, batched)]
    assert steps[1] <= steps[0] + 2, (one, batched)
    assert one.splitlines()[-1] == batched.splitlines()[-1]  # what differed: the same
    assert "not shrunk" not in batched


def test_a_batched_run_plays_the_same_steps_in_fewer_round_trips(agent: AgentChannel) -> None:
    quick = settings(max_examples=20, stateful_step_count=30, database=None, deadline=None)
    seen = []
    for batch in (1, 32):
        agent.batch = batch
        machine = _machine(agent, None, seed=5)
        calls = agent.calls
        try:
            machine.run(quick)
        finally:
            machine.close_device()
        stats = machine.stats()
        seen.append((stats.examples, stats.steps, agent.calls - calls))
    (examples, steps, one_calls), (b_examples, b_steps, b_calls) = seen
    assert (examples, steps) == (b_examples, b_steps)
    assert steps > 100
    assert b_calls * 3 < one_calls, seen
