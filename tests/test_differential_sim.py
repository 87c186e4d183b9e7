"""The differential runner finds a behaviour change, and nothing when there is none."""

from __future__ import annotations

import pytest

from vfio_hil import SimDevice, VfioPciModel, kernel_profile
from vfio_hil._diff.check import run_differential


class NoRefireOnUnmask(VfioPciModel):
    """A plausible regression: UNMASK forgets a still-pending INTx."""

    def intx_unmask_handler(self) -> int:
        super().intx_unmask_handler()
        return 0


class SkipsRangeCheck(VfioPciModel):
    """A plausible regression: loopback ignores the range on 6.1."""

    def set_msi_trigger(self, index: int, start: int, count: int, flags: int, data: bytes) -> int:
        if not flags & 4 and self.irq_is(index) and count:
            count = min(count, self.state.num_ctx - start)
        return super().set_msi_trigger(index, start, count, flags, data)


@pytest.mark.parametrize("kernel", ["6.1", "6.12"])
def test_a_device_agrees_with_its_own_twin(kernel: str) -> None:
    dev = SimDevice.virtio_msix(vectors=8, kernel=kernel)
    report = run_differential(
        lambda: dev, reopen=SimDevice.reopen, profile=kernel_profile(kernel), seeds=range(10)
    )
    assert report.cases > 100
    assert report.disagreements == []


def test_a_missing_refire_is_found_with_the_stimulus() -> None:
    dev = SimDevice.edu(kernel="6.12")
    report = run_differential(
        lambda: dev,
        reopen=SimDevice.reopen,
        twin_factory=lambda _: SimDevice.edu(kernel="6.12", model=NoRefireOnUnmask),
        matrix=False,
        seeds=range(40),
        settle_s=0.002,  # both sides are simulated: only the virqfd thread is late
    )
    assert report.disagreements, report.summary()
    _, first = report.disagreements[0]
    assert "model expected" in str(first) or "model returned" in str(first)


def test_a_loopback_range_regression_is_found_by_the_matrix() -> None:
    dev = SimDevice.virtio_msix(vectors=8, kernel="6.1")
    report = run_differential(
        lambda: dev,
        reopen=SimDevice.reopen,
        twin_factory=lambda _: SimDevice.virtio_msix(
            vectors=8, kernel="6.1", model=SkipsRangeCheck
        ),
    )
    assert any(
        "kernel returned EINVAL, model returned 0" in str(d) for _, d in report.disagreements
    )
