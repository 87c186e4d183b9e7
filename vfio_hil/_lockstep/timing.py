"""When the kernel's signals may arrive, and how long a reader waits for them.

One rule (``LateSignals``) says which steps can signal after their ioctl or
write returned; one policy (``Timing``) says what a reader does after such a
step.  The lockstep engine, the scenario player and the C reproducer (its
``SETTLE_US``/``CONVERGE_MS`` and per-step ``late`` flags) all take both from
here, so they cannot disagree about when to read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from vfio_hil import _uapi as u
from vfio_hil._hw import EDU_IRQ_ACK, EDU_IRQ_RAISE
from vfio_hil._lockstep.steps import (
    BarWrite,
    Clear,
    GetIrqInfo,
    PendEventfd,
    Raise,
    Reopen,
    SetCommand,
    SetDisIntx,
    SetIrqs,
    Step,
    WriteEventfd,
)

__all__ = [
    "CONVERGE_S",
    "FUZZ",
    "POLL_S",
    "REPLAY",
    "SETTLE_S",
    "LateSignals",
    "Timing",
    "late_steps",
]

# Long enough for a TCG guest to take an interrupt; bounded either way.
SETTLE_S = 0.03
CONVERGE_S = 1.0
POLL_S = 0.005
_INTX_OR_MSI = (0, 1)
_ERR_OR_REQ = (3, 4)


class LateSignals:
    """Could the kernel signal after a step returned (IRQ context or workqueue)?

    While the device has raised and not cleared everything, INTx/MSI
    requests, DisINTx writes and reopens can deliver from interrupt context;
    the unmask eventfd's re-fire always runs on a workqueue, also when an
    ERR/REQ loopback signals an eventfd that is the INTx unmask eventfd too
    (virqfd_wakeup() unmasks inside eventfd_signal() and schedules the
    re-fire: found on 7.2.13 in CI, where the read beat the kworker).
    GET_IRQ_INFO only reads: it never signals.
    """

    def __init__(self) -> None:
        self.raised = False
        self._pended = False

    def after(self, step: Step) -> bool:
        # The step after a PendEventfd may see a virqfd that woke on that write.
        pended, self._pended = self._pended, isinstance(step, PendEventfd)
        return self._after(step) or pended

    def _after(self, step: Step) -> bool:
        step = _as_stimulus(step)
        if isinstance(step, Raise):
            self.raised = True
        elif isinstance(step, Clear) and step.value & 0xFFFFFFFF == 0xFFFFFFFF:
            self.raised = False
        if isinstance(step, GetIrqInfo | BarWrite | PendEventfd):
            return False
        if isinstance(step, WriteEventfd):
            return True
        if isinstance(step, Raise | SetDisIntx | SetCommand | Reopen):
            return self.raised
        if not (self.raised and isinstance(step, SetIrqs)):
            return False
        return step.index in _INTX_OR_MSI or _is_err_req_loopback(step)


def _as_stimulus(step: Step) -> Step:
    """A BAR write to edu's raise (0x60) or ack (0x64) register counts as that
    stimulus (if memory decoding is off it did nothing: waiting is harmless)."""
    if isinstance(step, BarWrite):
        if step.offset == EDU_IRQ_RAISE:
            return Raise(step.value)
        if step.offset == EDU_IRQ_ACK:
            return Clear(step.value)
    return step


def _is_err_req_loopback(step: SetIrqs) -> bool:
    data = step.flags & u.VFIO_IRQ_SET_DATA_TYPE_MASK
    return (
        step.index in _ERR_OR_REQ
        and step.flags & u.VFIO_IRQ_SET_ACTION_TRIGGER != 0
        and data in (u.VFIO_IRQ_SET_DATA_NONE, u.VFIO_IRQ_SET_DATA_BOOL)
    )


def late_steps(steps: Iterable[Step]) -> list[bool]:
    """``LateSignals.after`` for each step of a sequence played from the start."""
    rule = LateSignals()
    return [rule.after(step) for step in steps]


@dataclass(frozen=True)
class Timing:
    """What a reader does after a late step.

    ``settle_s``: sleep first (a virqfd drains the unmask eventfd; reading it
    before would race).  Then poll every ``POLL_S`` until no counter is below
    what is expected, for at most ``converge_s``.  With ``recheck`` (the
    scenario player, whose expectations are per step) settle again and add
    what arrived, so an extra signal is charged to the step that caused it.

    A side whose device reports ``quiesce() is True`` (a ``SimDevice``) has
    delivered everything once quiesced: for such sides nothing is late.
    """

    settle_s: float = SETTLE_S
    converge_s: float = CONVERGE_S
    recheck: bool = False

    def read(
        self,
        read: Callable[[], Sequence[int]],
        expected: Sequence[int],
        late: bool,
    ) -> list[int]:
        """Counters from ``read`` (which drains them), waited for when ``late``."""
        if not late:
            return list(read())
        time.sleep(self.settle_s)
        got = list(read())
        deadline = time.monotonic() + self.converge_s
        while any(g < e for g, e in zip(got, expected, strict=True)):
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_S)
            got = [g + n for g, n in zip(got, read(), strict=True)]
        if self.recheck:
            time.sleep(self.settle_s)
            got = [g + n for g, n in zip(got, read(), strict=True)]
        return got


# Replays with per-step expectations (the scenario player, the C reproducer):
# an extra late signal belongs to the step that caused it.
REPLAY = Timing(recheck=True)

# The fuzzer: no settle before the first read.  It waits as long as the
# model's counts take to arrive and no longer; a signal beyond them is seen
# at the next step's read, or at the settled read that ends every example
# (``Lockstep.step(..., settle=True)`` in the machine's teardown).  A late
# step costs the signal's own latency instead of SETTLE_S: on edu under TCG
# a third of the steps are late, and the settle was most of the run.
FUZZ = Timing(settle_s=0.0)
