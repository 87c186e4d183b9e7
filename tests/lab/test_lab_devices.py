"""The lab's other device kinds: an SR-IOV VF, multi-vector MSI, a NIC.

One guest per kernel of the matrix (``VFIO_HIL_LAB_KERNELS``, default
``6.1 6.12 7 iommufd``, as test_lab_kernels.py) with the ``kinds`` preset
bound to vfio-pci: a VF of QEMU's NVMe (no INTx), the NEC xHCI (16 MSI
vectors, no MSI-X) and an e1000e (INTx, MSI, MSI-X 5).  In the guest: the
differential check, each device against its SimDevice preset
(tests/guest/test_sim_presets_guest.py), the conformance suite and the two
scenarios written for these kinds.  The long fuzz stays with the default
devices (test_lab_kernels.py); this keeps the cost at a few minutes per
kernel.

Without QEMU, virtme-ng or the cached kernels these tests skip and say how
to get them; with CI=true they fail.  ``VFIO_HIL_LAB_JOBS`` guests (default:
one per core) run at once; ``VFIO_HIL_LAB_ACCEL`` (default ``auto``) picks
the accelerator.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import pytest

import vfio_hil.suite
from tests.lab.lab_needs import find_kernel, missing, unavailable

pytestmark = pytest.mark.lab

KERNELS = os.environ.get("VFIO_HIL_LAB_KERNELS", "6.1 6.12 7 iommufd").split()
PRESET = "kinds"
TESTS = Path(__file__).resolve().parents[1]
CHECKS = (
    TESTS / "guest" / "test_differential.py",
    TESTS / "guest" / "test_sim_presets_guest.py",
    Path(vfio_hil.suite.__file__).resolve().parent,
    # The scenarios written for these kinds (the others run on the default devices).
    TESTS.parent / "scenarios" / "msi_multi_vector.yaml",
    TESTS.parent / "scenarios" / "vf_no_intx.yaml",
)
GUEST_TIMEOUT_S = 1200.0  # measured: 3-4 min per kernel under TCG on two cores
JOBS = int(os.environ.get("VFIO_HIL_LAB_JOBS", str(os.cpu_count() or 1)))
TEST_TIMEOUT_S = math.ceil(len(KERNELS) / max(JOBS, 1)) * GUEST_TIMEOUT_S + 120


class _Prefixed:
    """A stream that labels each line with its guest."""

    def __init__(self, label: str, out: IO[str]) -> None:
        self.label, self.out = label, out

    def write(self, text: str) -> int:
        for line in text.splitlines(keepends=True):
            self.out.write(f"[{self.label}] {line}")
        return len(text)

    def flush(self) -> None:
        self.out.flush()


def _run(spec: str, results: Path) -> Any:
    from vfio_hil._lab.run import run_lab

    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts="]
    (result,) = run_lab(
        [find_kernel(spec)],
        [*command, *map(str, CHECKS)],
        accel=os.environ.get("VFIO_HIL_LAB_ACCEL", "auto"),
        devices=PRESET,
        timeout=GUEST_TIMEOUT_S,
        results_dir=results,
        echo=_Prefixed(f"{spec} {PRESET}", sys.stderr),  # type: ignore[arg-type]
        env={"VFIO_HIL_DIFF_SEEDS": os.environ.get("VFIO_HIL_DIFF_SEEDS", "20")},
    )
    return result


@pytest.fixture(scope="module")
def device_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[Any]]]:
    """Start a ``kinds`` guest for every selected kernel the lab can boot."""
    from vfio_hil._lab.run import stop_all_guests

    wanted = [
        item.callspec.params["spec"]
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.originalname == "test_device_kinds_agree_with_the_model_and_pass_the_suite"
    ]
    pool = ThreadPoolExecutor(max_workers=max(JOBS, 1), thread_name_prefix="lab-kinds")
    runs = {
        spec: pool.submit(_run, spec, tmp_path_factory.mktemp(f"{spec}-{PRESET}"))
        for spec in wanted
        if missing(spec) is None
    }
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main else None
    try:
        yield runs
    finally:  # interrupted or done: no guest outlives the session
        pool.shutdown(wait=False, cancel_futures=True)
        stop_all_guests()
        pool.shutdown(wait=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@pytest.mark.timeout(TEST_TIMEOUT_S)  # each guest's own hard timeout fires first
@pytest.mark.parametrize("spec", KERNELS)
def test_device_kinds_agree_with_the_model_and_pass_the_suite(
    spec: str, device_runs: dict[str, Future[Any]]
) -> None:
    lacking = missing(spec)
    if lacking is not None:
        unavailable(lacking)
    result = device_runs[spec].result()
    output = result.results_dir / "output.log"
    tail = output.read_text()[-6000:] if output.exists() else "(no output)"
    assert result.ok, f"{result.summary()}\n{result.error or ''}\n{tail}"
    guest = (result.results_dir / "guest.json").read_text()
    for kind in ("1b36:0010", "1033:0194", "8086:10d3"):  # every kind was bound
        assert kind in guest, f"{kind} not bound on {spec}:\n{guest}"
