"""In a lab guest of the ``scale`` preset: the 2048-vector device through the
conformance suite, the scale benchmark and a short fuzz run.

Run by tests/lab/test_lab_scale.py as the guest's command (not collected:
no ``test_`` prefix).  Each part runs whatever the one before did, prints
``scale part NAME: exit K (S s)`` and the script exits with the worst code.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import vfio_hil.suite
from vfio_hil._bench.scale import largest_msix
from vfio_hil._targets import env_list

SUITE = Path(vfio_hil.suite.__file__).resolve().parent
FUZZ_EXAMPLES = os.environ.get("VFIO_HIL_SCALE_FUZZ_EXAMPLES", "20")
PART_TIMEOUT_S = 600.0  # the lab's own timeout ends the guest before three of these


def main() -> int:
    address = largest_msix(env_list("VFIO_HIL_DEVICES") or [])
    print(f"scale: the largest MSI-X table is {address}'s", flush=True)
    python = sys.executable
    pytest = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts="]
    parts = {
        "suite": [*pytest, "--vfio-device", address, str(SUITE)],
        "bench": [python, "-m", "vfio_hil._bench.scale", "--device", address, "--rounds", "3"],
        "fuzz": [python, "-m", "vfio_hil", "fuzz", "--device", address, "--profile", "ci"],
    }
    parts["fuzz"] += ["--max-examples", FUZZ_EXAMPLES]
    worst = 0
    for name, argv in parts.items():
        print(f"scale part {name}: {' '.join(argv)}", flush=True)
        started = time.monotonic()
        try:
            code = subprocess.run(argv, timeout=PART_TIMEOUT_S, check=False).returncode
        except subprocess.TimeoutExpired:
            print(f"scale part {name}: timed out after {PART_TIMEOUT_S:.0f} s", flush=True)
            code = 124
        seconds = time.monotonic() - started
        print(f"scale part {name}: exit {code} ({seconds:.1f} s)", flush=True)
        worst = max(worst, code)
    return worst


if __name__ == "__main__":
    raise SystemExit(main())
