"""The differential state machine on the lab's real devices (``ci`` profile).

Runs inside the lab (tests/guest/conftest.py skips it elsewhere).  Kept
bounded for TCG, where a step costs about a millisecond and steps that can
signal late wait 30 ms: ``VFIO_HIL_FUZZ_EXAMPLES`` examples (default 30) of
at most ``VFIO_HIL_FUZZ_STEPS`` steps (default 25).  A counterexample is
written to ``$VFIO_HIL_RESULTS/counterexamples``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from tests.guest.conftest import lab_devices
from vfio_hil import open_device
from vfio_hil._diff import running_kernel_profile
from vfio_hil.stateful import fuzz_settings, make_machine

EXAMPLES = int(os.environ.get("VFIO_HIL_FUZZ_EXAMPLES", "30"))
STEPS = int(os.environ.get("VFIO_HIL_FUZZ_STEPS", "25"))


@pytest.mark.parametrize("address", lab_devices() or ["none"])
def test_the_kernel_and_the_model_agree_under_the_state_machine(address: str) -> None:
    bounded = settings(fuzz_settings("ci"), max_examples=EXAMPLES, stateful_step_count=STEPS)
    machine = make_machine(lambda: open_device(address), profile=running_kernel_profile())
    try:
        run_state_machine_as_test(machine, settings=bounded)
    finally:
        machine.close_device()
        stats = machine.stats()
        print(
            f"{address}: {stats.examples} examples, {stats.steps} steps in {stats.seconds:.1f}s "
            f"({stats.steps / max(stats.seconds, 1e-9):.0f} steps/s)"
        )
