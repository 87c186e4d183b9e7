"""The differential check: the running kernel against the model, step by step.

Every row of the spec's matrix, then seeded random sequences with
device-raised interrupts (edu), resets and reopens.  A disagreement is a
model bug until the kernel source proves otherwise.
"""

from __future__ import annotations

import os

import pytest

from tests.guest.conftest import lab_devices
from vfio_hil import open_device
from vfio_hil._diff.check import run_differential
from vfio_hil._host.platform import running_kernel_profile

SEEDS = int(os.environ.get("VFIO_HIL_DIFF_SEEDS", "40"))


@pytest.mark.parametrize("address", lab_devices() or ["none"])
def test_kernel_and_model_agree(address: str) -> None:
    report = run_differential(
        lambda: open_device(address),
        profile=running_kernel_profile(),
        seeds=range(SEEDS),
        length=40,
        progress=print,
    )
    print(report.summary())
    assert not report.disagreements, f"{report.summary()}\n{report.details()}"
