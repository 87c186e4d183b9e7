"""The scale benchmark: every MSI-X vector enabled, triggered and read once.

On a simulated device (no fd to hand to C) it runs the Python side only; the
C side needs a real device and runs in the lab (tests/lab/test_lab_scale.py).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from vfio_hil import SimDevice
from vfio_hil._bench.scale import PHASES, bench_scale, run
from vfio_hil._errors import VfioHilError
from vfio_hil._irq import IrqIndex


def test_every_vector_of_a_2048_table_signals_once_per_trigger() -> None:
    dev = SimDevice.virtio_msix(2048)
    result, bad = bench_scale(dev, None, rounds=2)
    assert bad == 0
    assert result.vectors == 2048
    assert set(result.python_s) == set(PHASES)
    assert result.c_s is None  # no fd: no C side
    assert result.ratio() is None
    assert "2048 MSI-X vectors" in str(result)


def test_the_benchmark_leaves_the_index_disabled() -> None:
    dev = SimDevice.virtio_msix(16)
    bench_scale(dev, None, vectors=8, rounds=1)
    # a loopback on a disabled MSI-X index is refused: nothing was left enabled
    from vfio_hil import IrqSet, VfioError

    with pytest.raises(VfioError):
        dev.set_irqs(IrqSet.trigger(IrqIndex.MSIX, 0, 1))


@pytest.mark.parametrize("vectors", [17, 4096])
def test_more_vectors_than_the_table_has_is_a_setup_error_naming_the_value(vectors: int) -> None:
    with pytest.raises(VfioHilError, match=f"--vectors {vectors} does not fit .* of 16"):
        bench_scale(SimDevice.virtio_msix(16), None, vectors=vectors)


def test_a_device_without_msix_is_a_setup_error() -> None:
    with pytest.raises(VfioHilError, match="has no MSI-X vectors"):
        bench_scale(SimDevice.edu(), None)


def test_run_on_a_sim_prints_the_phases(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(sim="virtio_msix:64", rounds=1) == 0
    out = capsys.readouterr().out
    assert "64 MSI-X vectors" in out
    assert "every one of the 64 eventfds read exactly 1" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--vectors", "0"], "--vectors: a positive whole number, not '0'"),
        (["--sim", "edu"], "has no MSI-X vectors"),
        ([], "VFIO_HIL_DEVICES names none"),
    ],
)
def test_bad_input_is_a_usage_error_that_says_what_to_do(argv: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vfio_hil", "bench", "scale", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "VFIO_HIL_DEVICES": ","},
    )
    assert done.returncode == 2
    assert message in done.stderr
