"""The differential check as one call: matrix cases, then seeded sequences."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from vfio_hil._device import Device
from vfio_hil._diff.cases import SLOTS, cleanup_steps, matrix_cases, random_sequence
from vfio_hil._lockstep import Disagreement, Lockstep, Side, Timing, irq_counts, twin_of
from vfio_hil._lockstep.timing import SETTLE_S
from vfio_hil._model import KernelProfile
from vfio_hil._sim.device import SimDevice

__all__ = ["DiffReport", "run_differential"]


@dataclass
class DiffReport:
    device: str
    profile: str
    cases: int = 0
    steps: int = 0
    seconds: float = 0.0
    disagreements: list[tuple[str, Disagreement]] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.device} (model {self.profile}): {self.cases} cases, {self.steps} steps, "
            f"{len(self.disagreements)} disagreements in {self.seconds:.1f}s"
        )

    def details(self) -> str:
        return "\n".join(f"[{label}] {d}" for label, d in self.disagreements)


def run_differential(
    open_kernel: Callable[[], Device],
    *,
    reopen: Callable[[Device], Device] | None = None,
    profile: KernelProfile | None = None,
    twin_factory: Callable[[Device], SimDevice] | None = None,
    matrix: bool = True,
    seeds: range = range(0),
    length: int = 40,
    progress: Callable[[str], None] | None = None,
    settle_s: float = SETTLE_S,
) -> DiffReport:
    """Play the matrix and ``seeds`` random sequences on a device and its twin.

    ``reopen`` closes and reopens the kernel-side device (default: the
    device's own ``reopen``); the twin is ``twin_of(device, profile)``.
    """
    started = time.monotonic()
    device = open_kernel()
    twin = twin_factory(device) if twin_factory else twin_of(device, profile)
    counts = irq_counts(device)
    report = DiffReport(device.name, twin.profile.name)
    run = Lockstep(Side(device, SLOTS, reopen=reopen), Side(twin, SLOTS), Timing(settle_s=settle_s))
    cases = matrix_cases(counts) if matrix else []
    stimulus = device.stimulus is not None
    cases += [
        (f"seed {seed}", random_sequence(random.Random(seed), counts, stimulus, length))
        for seed in seeds
    ]
    try:
        for number, (label, steps) in enumerate(cases, 1):
            run.clean(cleanup_steps(counts))
            for step in steps:
                bad = run.play(step)
                if bad is not None:
                    report.disagreements.append((label, bad))
                    break  # later steps of a diverged case say nothing new
            report.cases += 1
            if progress and number % 100 == 0:
                progress(f"{report.device}: {number}/{len(cases)} cases")
    finally:
        report.steps = run.steps
        run.close()
        report.seconds = time.monotonic() - started
    return report
