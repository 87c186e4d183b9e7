"""A step written in the scenario format reads back as the same step.

The fuzzer writes counterexamples with ``vfio_hil._scenario.write`` and the
scenario player reads them with ``vfio_hil._scenario.steps``: if the two
disagreed on one kind, a counterexample would replay something else than
what failed.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from vfio_hil._diff import SLOTS
from vfio_hil._lockstep import (
    BarWrite,
    Clear,
    GetIrqInfo,
    Raise,
    Reopen,
    Reset,
    SetCommand,
    SetDisIntx,
    Step,
    WriteEventfd,
)
from vfio_hil._scenario import parse_scenario
from vfio_hil._scenario.discover import MARKER_LINE
from vfio_hil._scenario.write import step_yaml
from vfio_hil.strategies import requests

_COUNTS = {0: 1, 1: 4, 2: 64, 3: 1, 4: 1}
_OTHER_STEPS = st.one_of(
    st.builds(Raise, st.integers(0, 2**32 - 1)),
    st.builds(Clear, st.integers(0, 2**32 - 1)),
    st.just(Reset()),
    st.just(Reopen()),
    st.builds(WriteEventfd, st.integers(0, SLOTS - 1)),
    st.builds(SetDisIntx, st.booleans()),
    st.builds(SetCommand, st.integers(0, 0xFFFF)),
    st.builds(BarWrite, st.integers(0, 2**30 - 1).map(lambda n: n * 4), st.integers(0, 2**32 - 1)),
    st.builds(GetIrqInfo, st.one_of(st.integers(0, 4), st.integers(0, 2**32 - 1))),
)


def _read_back(step: Step) -> Step:
    text = f"{MARKER_LINE}\neventfds: {SLOTS}\nsteps:\n  - {step_yaml(step)}\n"
    return parse_scenario(text, Path("roundtrip.yaml")).steps[0].op


@settings(max_examples=400, derandomize=True, deadline=None)
@given(st.one_of(requests(_COUNTS, validity="mixed"), requests(_COUNTS, validity="invalid")))
def test_every_generated_request_reads_back_as_itself(step: Step) -> None:
    assert _read_back(step) == step


@settings(max_examples=100, derandomize=True, deadline=None)
@given(_OTHER_STEPS)
def test_every_other_step_kind_reads_back_as_itself(step: Step) -> None:
    assert _read_back(step) == step
