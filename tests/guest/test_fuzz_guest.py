"""The differential state machine on the lab's real devices (``ci`` profile).

Runs inside the lab (tests/guest/conftest.py skips it elsewhere), with the
whole ``ci`` profile: the same derandomized examples on every kernel of the
matrix, as the mutant bench uses.  Under TCG that is several minutes per
device; ``VFIO_HIL_FUZZ_EXAMPLES`` and ``VFIO_HIL_FUZZ_STEPS`` cut it down for
a quick local look.  A counterexample is written to
``$VFIO_HIL_RESULTS/counterexamples``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from tests.guest.conftest import lab_devices
from vfio_hil import open_device
from vfio_hil._host.platform import running_kernel_profile
from vfio_hil.stateful import fuzz_settings, make_machine

CI = fuzz_settings("ci")
EXAMPLES = int(os.environ.get("VFIO_HIL_FUZZ_EXAMPLES", str(CI.max_examples)))
STEPS = int(os.environ.get("VFIO_HIL_FUZZ_STEPS", str(CI.stateful_step_count)))


@pytest.mark.timeout(1800)  # the whole ci profile under TCG: about 7 minutes per device
@pytest.mark.parametrize("address", lab_devices() or ["none"])
def test_the_kernel_and_the_model_agree_under_the_state_machine(address: str) -> None:
    bounded = settings(CI, max_examples=EXAMPLES, stateful_step_count=STEPS)
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
    assert stats.failures == 0
    assert stats.examples >= EXAMPLES  # the whole profile ran, not a stopped-early part
