"""The differential check as one call: matrix cases, then seeded sequences."""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from vfio_hil._coverage.recorder import count_model_side, paused
from vfio_hil._device import Device
from vfio_hil._diff.cases import (
    SLOTS,
    cleanup_steps,
    config_cases,
    matrix_cases,
    random_sequence,
)
from vfio_hil._lockstep import Disagreement, Lockstep, Side, Timing, irq_counts, side_of, twin_of
from vfio_hil._lockstep.steps import Reopen, Step
from vfio_hil._lockstep.timing import SETTLE_S
from vfio_hil._model import KernelOops, KernelProfile
from vfio_hil._sim.device import SimDevice

__all__ = ["DiffReport", "run_differential"]

PROGRESS_CASES = 100  # a progress line every this many cases,
PROGRESS_S = 10.0  # and at least this often within a long case


@dataclass
class DiffReport:
    device: str
    profile: str
    cases: int = 0
    steps: int = 0
    seconds: float = 0.0
    disagreements: list[tuple[str, Disagreement]] = field(default_factory=list)
    # Cases cut short where the model says the next step would oops the kernel.
    oopses: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        cut = f", {len(self.oopses)} cut short (would oops)" if self.oopses else ""
        return (
            f"{self.device} (model {self.profile}): {self.cases} cases, {self.steps} steps, "
            f"{len(self.disagreements)} disagreements{cut} in {self.seconds:.1f}s"
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
    with paused():  # the twin builder's GET_IRQ_INFO is set-up, not a step
        twin = twin_factory(device) if twin_factory else twin_of(device, profile)
        counts = irq_counts(device)
    count_model_side(device, twin)
    report = DiffReport(device.name, twin.profile.name)
    run = Lockstep(
        side_of(device, SLOTS, reopen=reopen), Side(twin, SLOTS), Timing(settle_s=settle_s)
    )
    stimulus = device.stimulus is not None
    matrix_part = [*matrix_cases(counts), *config_cases(counts, stimulus)] if matrix else []
    # One generator per seed, drawn as it is played: memory stays flat
    # however long the sequences are.
    cases: Iterator[tuple[str, Iterable[Step]]] = itertools.chain(
        matrix_part,
        (
            (f"seed {seed}", random_sequence(random.Random(seed), counts, stimulus, length))
            for seed in seeds
        ),
    )
    total = len(matrix_part) + len(seeds)
    told = time.monotonic()

    def tell() -> None:
        nonlocal told
        told = time.monotonic()
        if progress is not None:
            progress(
                f"{report.device}: {report.cases}/{total} cases, {run.steps} steps "
                f"in {told - started:.0f}s"
            )

    try:
        for label, steps in cases:
            with paused():  # cleaning is not a step of the case
                run.clean(cleanup_steps(counts), twin.function.command_at_open)
            for step in steps:
                try:
                    bad = run.play(step)
                except KernelOops as oops:
                    # Never sent to the kernel: the model said no. Both sides
                    # start the next case from a fresh open.
                    report.oopses.append((label, f"{step!r}: {oops}"))
                    run.kernel.play(Reopen())
                    run.model.play(Reopen())
                    break
                if bad is not None:
                    report.disagreements.append((label, bad))
                    break  # later steps of a diverged case say nothing new
                # A real device settles late steps: one long sequence can take
                # minutes, so the time also prompts a line, not only the cases.
                if time.monotonic() - told >= PROGRESS_S:
                    tell()
            report.cases += 1
            if report.cases % PROGRESS_CASES == 0:
                tell()
    finally:
        report.steps = run.steps
        run.close()
        report.seconds = time.monotonic() - started
    return report
