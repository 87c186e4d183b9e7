"""The lab at scale: a 2048-vector MSI-X table, the PCI maximum, on a real vfio-pci.

One guest (kernel ``VFIO_HIL_LAB_SCALE_KERNEL``, default 6.12) with the
``scale`` preset (edu, and a virtio-rng with 2048 MSI-X vectors behind a PCIe
root port), 16 vCPUs: x86 gives each enabled MSI-X vector an interrupt
vector of a CPU, about 200 per CPU, so on the lab's usual 2 vCPUs the kernel
refuses to enable more than ~400 (ENOSPC).  In the guest
(tests/lab/scale_guest.py), on the 2048-vector device:

- the conformance suite (vfio_hil.suite);
- the scale benchmark: all 2048 vectors enabled, triggered (DATA_NONE and
  DATA_BOOL) and read, Python and C; it fails unless every eventfd reads
  exactly 1 after each trigger.  Its figures are printed, not asserted;
- a short fuzz run (the state machine, ``ci`` profile, 20 examples), whose
  strategies draw whole-table and upper-half ranges on a table this size.

Without QEMU, virtme-ng or the cached kernel this test skips and says how to
get them; with CI=true it fails.  ``VFIO_HIL_LAB_ACCEL`` (default ``auto``)
picks the accelerator.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import IO, Any

import pytest

from tests.lab.lab_needs import find_kernel, missing, unavailable

pytestmark = pytest.mark.lab

KERNEL = os.environ.get("VFIO_HIL_LAB_SCALE_KERNEL", "6.12")
PRESET = "scale"
VECTORS = 2048
GUEST = Path(__file__).resolve().with_name("scale_guest.py")
GUEST_TIMEOUT_S = 1200.0  # measured: about 5 min under TCG on two busy cores
# What of the guest's output is worth a line in a CI log while pytest captures.
_PROGRESS = re.compile(
    r"^(lab: |VFIO-HIL-LAB: (guest up|command (start|exit))|scale part |\S+: (\d+ MSI-X vectors"
    r"|running;|agree;|disagree)|\s+(phase|enable|trigger|read|disable|total)\b|python/C"
    r"|every one of|FAILED)"
)


class _Progress:
    """The guest's console, labelled, into the captured output; its progress
    lines (boot, each part's start and exit, the benchmark's figures) also to
    the terminal, the capture suspended for each line."""

    def __init__(self, label: str, out: IO[str], capture: Any) -> None:
        self.label, self.out, self.capture = label, out, capture

    def write(self, text: str) -> int:
        for line in text.splitlines(keepends=True):
            self.out.write(f"[{self.label}] {line}")
            if self.capture is not None and _PROGRESS.match(line):
                with self.capture.global_and_fixture_disabled():
                    sys.stderr.write(f"\n[{self.label}] {line.rstrip()}")
                    sys.stderr.flush()
        return len(text)

    def flush(self) -> None:
        self.out.flush()


@pytest.mark.timeout(GUEST_TIMEOUT_S + 120)  # the guest's own hard timeout fires first
def test_a_2048_vector_device_passes_the_suite_signals_every_vector_and_fuzzes(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from vfio_hil._bench.scale import LAB_CPUS
    from vfio_hil._lab.run import run_lab, stop_all_guests

    lacking = missing(KERNEL)
    if lacking is not None:
        unavailable(lacking)
    capture = request.config.pluginmanager.getplugin("capturemanager")
    try:
        (result,) = run_lab(
            [find_kernel(KERNEL)],
            [sys.executable, str(GUEST)],
            accel=os.environ.get("VFIO_HIL_LAB_ACCEL", "auto"),
            devices=PRESET,
            cpus=LAB_CPUS,
            timeout=GUEST_TIMEOUT_S,
            results_dir=tmp_path,
            echo=_Progress(f"{KERNEL} {PRESET}", sys.stderr, capture),  # type: ignore[arg-type]
        )
    finally:  # interrupted or done: no guest outlives the test
        stop_all_guests()
    output = result.results_dir / "output.log"
    text = output.read_text() if output.exists() else "(no output)"
    assert result.ok, f"{result.summary()}\n{result.error or ''}\n{text[-6000:]}"
    # what each part's exit 0 stands for, said by the parts themselves
    assert f"{VECTORS} MSI-X vectors" in text, text[-3000:]
    assert f"every one of the {VECTORS} eventfds read exactly 1 after each trigger" in text
    for part in ("suite", "bench", "fuzz"):
        assert re.search(rf"^scale part {part}: exit 0 ", text, re.M), text[-3000:]
