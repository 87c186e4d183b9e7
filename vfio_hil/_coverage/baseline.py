"""The cells the ``ci`` profile must keep reaching on each simulated preset.

``must_reach.txt`` holds them (a section per target spec); the test
``tests/test_coverage_must_reach.py`` runs the profile and names any listed
cell it no longer reaches.  After a change that reaches more (or, on
purpose, other) cells, rewrite the file:

    python -m vfio_hil._coverage.baseline
"""

from __future__ import annotations

import sys
from pathlib import Path

from vfio_hil._coverage.cells import Cell
from vfio_hil._coverage.recorder import Recorder, recording
from vfio_hil._coverage.report import DeviceCoverage, coverage_of

__all__ = ["MUST_REACH", "PRESETS", "ci_coverage", "must_reach"]

MUST_REACH = Path(__file__).with_name("must_reach.txt")
PRESETS = ("sim:edu", "sim:virtio_msix", "sim:e1000e", "sim:xhci_msi", "sim:nvme_vf")


def ci_coverage(spec: str, profile: str = "ci") -> DeviceCoverage:
    """Run ``profile`` (seed 0 for ``ci``) on ``spec`` and return what it covered."""
    from vfio_hil._fuzz.campaign import run_campaign
    from vfio_hil._fuzz.profiles import fuzz_settings
    from vfio_hil._targets import parse_target
    from vfio_hil.stateful import make_machine

    target = parse_target(spec)
    with recording(Recorder()) as recorder:
        machine = make_machine(target.open, settings=fuzz_settings(profile), export=False)
        try:
            run_campaign(machine)
        finally:
            machine.close_device()
    (found,) = coverage_of(recorder)
    return found


def must_reach(path: Path = MUST_REACH) -> dict[str, list[Cell]]:
    """The listed cells by target spec."""
    sections: dict[str, list[Cell]] = {}
    current: list[Cell] | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
        elif current is None:
            raise ValueError(f"{path}:{number}: a cell before any [sim:PRESET] section")
        else:
            current.append(Cell.parse(line))
    return sections


def main() -> int:
    lines = [
        "# Cells the ci profile (seed 0) reaches on each preset; tests/test_coverage_must_reach.py",
        "# fails naming any it no longer reaches.  Rewrite: python -m vfio_hil._coverage.baseline",
    ]
    for spec in PRESETS:
        found = ci_coverage(spec)
        print(found.summary(), file=sys.stderr, flush=True)
        lines += ["", f"[{spec}]", *map(str, sorted(found.reached))]
    MUST_REACH.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
