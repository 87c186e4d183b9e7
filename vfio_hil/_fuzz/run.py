"""The lockstep run the state machine drives: ``DifferentialRun`` plus a record.

``FuzzRun`` reuses ``vfio_hil._diff.runner`` unchanged in what it compares;
it adds two things the machine needs:

* the kernel side's observation of every step (to write counterexamples):
  when the sides agree it is the model side's, which ``RecordingSide`` keeps;
* for two simulated sides, the honest timing: a ``SimDevice`` delivers every
  signal synchronously except a user's write to the unmask eventfd (a helper
  thread takes it), so a step has both sides take such writes at once
  (``SimDevice.quiesce``) instead of waiting a fixed settle time, and a
  missing signal is given up on after ``converge_s``, not the second a real
  kernel gets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from vfio_hil._diff.ops import Step
from vfio_hil._diff.runner import DifferentialRun, Disagreement, LateSignals, Observation, Side
from vfio_hil._sim.device import SimDevice

__all__ = ["FuzzRun", "Played", "RecordingSide", "SimLateSignals"]


@dataclass(frozen=True)
class Played:
    """One step and what the kernel side answered (return value or errno, counters)."""

    step: Step
    kernel: Observation


class RecordingSide(Side):
    """A Side that remembers its last result and its last counters read."""

    last_result: int | str = 0
    last_counters: tuple[int, ...] = ()

    def play(self, step: Step) -> int | str:
        self.last_result = super().play(step)
        return self.last_result

    def read(self) -> list[int]:
        counters = super().read()
        self.last_counters = tuple(counters)
        return counters


class SimLateSignals(LateSignals):
    """``LateSignals`` for two simulated sides: nothing is late.

    A ``SimDevice`` delivers every signal synchronously except a user's write
    to the INTx unmask eventfd, which a helper thread follows (the kernel's
    virqfd runs inside the write).  ``after`` has both sides take such writes
    at once, then reports nothing late.
    """

    def __init__(self, kernel: Side, model: Side) -> None:
        super().__init__()
        self._sides = (kernel, model)

    def after(self, step: Step) -> bool:
        super().after(step)  # keeps the raised/cleared bookkeeping
        for side in self._sides:
            if isinstance(side.device, SimDevice):
                side.device.quiesce()
        return False


class FuzzRun(DifferentialRun):
    """``DifferentialRun`` that also returns the kernel side's observation."""

    def __init__(
        self,
        kernel: Side,
        model: RecordingSide,
        settle_s: float,
        *,
        simulated: bool = False,
        converge_s: float = 0.2,
    ) -> None:
        super().__init__(kernel, model, settle_s)
        self.recorder = model
        self.simulated = simulated
        self.converge_s = converge_s
        if simulated:
            self._late = SimLateSignals(kernel, model)

    def step(self, step: Step) -> tuple[Played, Disagreement | None]:
        """Play ``step`` on both sides; what the kernel did, and any disagreement."""
        bad = self.play(step)
        if bad is not None:
            return Played(step, bad.kernel), bad
        seen = Observation(self.recorder.last_result, self.recorder.last_counters)
        return Played(step, seen), None

    def _read_kernel_converging(self, expected: list[int]) -> list[int]:
        if not self.simulated:
            return super()._read_kernel_converging(expected)
        got = self.kernel.read()
        deadline = time.monotonic() + self.converge_s
        while any(g < e for g, e in zip(got, expected, strict=True)):
            if time.monotonic() >= deadline:
                break
            time.sleep(0.002)
            got = [g + n for g, n in zip(got, self.kernel.read(), strict=True)]
        return got
