"""Play a scenario on an open device and check every step's expectation.

Steps are played by the lockstep engine's ``Side``, so a scenario and a
differential run mean the same thing by each op.  Counters are read after
every step; after a step whose signals can arrive once the call has returned
(``vfio_hil._lockstep.timing.LateSignals``) the reader follows the replay
policy (``timing.REPLAY``): settle, poll until the expected counts arrive,
settle again to catch any extra signal.  A simulated device is quiesced
instead: nothing is late there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vfio_hil._device import Device, close_clean
from vfio_hil._lockstep import LateSignals, Side, side_of
from vfio_hil._lockstep.timing import REPLAY
from vfio_hil._model import KernelOops, KernelProfile
from vfio_hil._scenario.expect import Expect
from vfio_hil._scenario.load import Scenario
from vfio_hil._scenario.steps import ScenarioStep

__all__ = ["ExpectationError", "Observed", "StepWouldOops", "describe_result", "play_scenario"]


@dataclass(frozen=True)
class Observed:
    """A step's outcome: the return value or the errno's name, and every count."""

    result: int | str
    counters: tuple[int, ...]
    command: int | None = None  # PCI_COMMAND, when the expectation names one
    info: tuple[int, int] | None = None  # irq_info's (flags, count), when expected

    def __str__(self) -> str:
        counts = " ".join(f"e{slot}={n}" for slot, n in enumerate(self.counters))
        text = f"{describe_result(self.result)}; {counts or '(no eventfds)'}"
        if self.command is not None:
            text += f"; PCI_COMMAND {self.command:#06x}"
        if self.info is not None:
            text += f"; flags={self.info[0]:#x} count={self.info[1]}"
        return text


def describe_result(result: int | str) -> str:
    """``return 0`` or ``errno EINVAL``."""
    return f"return {result}" if isinstance(result, int) else f"errno {result}"


class ExpectationError(AssertionError):
    """A step's outcome differs from its expectation."""

    def __init__(self, step: ScenarioStep, expected: Expect, observed: Observed) -> None:
        self.step = step
        self.expected = expected
        self.observed = observed
        self.wanted = _wanted(expected, len(observed.counters))
        super().__init__(
            f"step {step.number} (line {step.line}): expected {self.wanted}, got {observed}"
        )


class StepWouldOops(Exception):  # noqa: N818 - names the event, as KernelOops does
    """A simulated kernel says a step would oops it (``KernelOops``): on that
    kernel the scenario cannot run past it (on a real one it would crash)."""

    def __init__(self, step: ScenarioStep, oops: KernelOops) -> None:
        self.step = step
        super().__init__(f"step {step.number} (line {step.line}) would oops this kernel: {oops}")


def play_scenario(
    scenario: Scenario,
    device: Device,
    profile: KernelProfile | None = None,
    on_step: Callable[[ScenarioStep], None] = lambda step: None,
) -> None:
    """Play every step; raise ExpectationError at the first mismatch.

    Whatever happens, every index is disabled, the device's interrupt status
    cleared, the eventfds closed and the device closed.
    """
    profile = profile or device.kernel
    side = side_of(device, scenario.eventfds)
    late = LateSignals()
    try:
        for step in scenario.steps:
            on_step(step)
            expected = step.expect.select(profile)
            want = expected.counters(scenario.eventfds)
            try:
                seen = side.observe(step.op, late.after(step.op), want, REPLAY)
            except KernelOops as oops:
                raise StepWouldOops(step, oops) from None
            command = seen.command if expected.command is not None else None
            info = seen.info if expected.info is not None else None
            observed = Observed(seen.result, seen.counters, command, info)
            if observed != _wanted(expected, scenario.eventfds):
                raise ExpectationError(step, expected, observed)
    finally:
        _clean_up(side)


def _wanted(expected: Expect, slots: int) -> Observed:
    return Observed(expected.result, expected.counters(slots), expected.command, expected.info)


def _clean_up(side: Side) -> None:
    close_clean(side.device)
    side.close()
