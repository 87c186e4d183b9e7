"""Play one sequence on a device and on its twin, in lockstep, and compare.

After every step both sides must agree on the return value or errno and on
the counter of every eventfd slot.  ``vfio_hil._lockstep.timing`` decides
which steps may signal late and how long the kernel side is waited for.
"""

from __future__ import annotations

import errno as _errno
import os
import select
import struct
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

from vfio_hil import _uapi as u
from vfio_hil._device import Device
from vfio_hil._errors import VfioError, errno_name
from vfio_hil._eventfd import EventFd
from vfio_hil._hw import CMD_INTX_DISABLE, PCI_COMMAND
from vfio_hil._lockstep.steps import (
    COMMAND_STEPS,
    BarWrite,
    Clear,
    FdResolver,
    GetIrqInfo,
    PendEventfd,
    Raise,
    Reopen,
    Reset,
    SetCommand,
    SetDisIntx,
    SetIrqs,
    Step,
    WriteEventfd,
)
from vfio_hil._lockstep.timing import SETTLE_S, LateSignals, Timing

__all__ = [
    "Disagreement",
    "Expected",
    "Lockstep",
    "Observation",
    "Played",
    "Side",
    "closed_fd_number",
    "describe_info",
    "side_of",
]

_CONFIG = u.VFIO_PCI_CONFIG_REGION_INDEX
_U16 = struct.Struct("<H")


# A model side is read at once (never late): it has delivered when quiesced.
_AT_ONCE = Timing()

IrqInfoAnswer = tuple[int, int]  # GET_IRQ_INFO's (flags, count)


def describe_info(info: IrqInfoAnswer | None) -> str:
    """``flags=0x7 count=1``; ``no answer`` when the call failed."""
    return "no answer" if info is None else f"flags={info[0]:#x} count={info[1]}"


@dataclass(frozen=True)
class Observation:
    result: int | str  # the return value, or the errno's name
    counters: tuple[int, ...]
    info: IrqInfoAnswer | None = None  # what a GetIrqInfo step was told, else None
    command: int | None = None  # PCI_COMMAND after a COMMAND_STEPS step, else None


@dataclass(frozen=True)
class Played:
    """One step and what the kernel side answered (return value or errno, counters)."""

    step: Step
    kernel: Observation


@dataclass(frozen=True)
class Disagreement:
    """Two observations of one step that differ: a kernel's and its model's,
    or (kernel-vs-kernel) two kernels', named by ``left`` and ``right``."""

    step_no: int
    step: Step
    kernel: Observation
    model: Observation
    left: str = "kernel"
    right: str = "model"

    def __str__(self) -> str:
        k, m, left, right = self.kernel, self.model, self.left, self.right
        lines = [f"step {self.step_no}: {self.step!r}"]
        if k.result != m.result:
            lines.append(f"  {left} returned {k.result}, {right} returned {m.result}")
        if k.info != m.info:
            lines.append(
                f"  GET_IRQ_INFO: {left} answered {describe_info(k.info)}, "
                f"{right} answered {describe_info(m.info)}"
            )
        if k.command != m.command:
            lines.append(
                f"  PCI_COMMAND: {left} reads {_hex(k.command)}, {right} reads {_hex(m.command)}"
            )
        expects = "expected" if right.endswith("model") else "read"
        for slot, (a, b) in enumerate(zip(k.counters, m.counters, strict=True)):
            if a != b:
                lines.append(f"  eventfd e{slot}: {left} read {a}, {right} {expects} {b}")
        return "\n".join(lines)


def _hex(value: int | None) -> str:
    return "nothing" if value is None else f"{value:#06x}"


def closed_fd_number() -> int:
    """A descriptor number that is not open: the highest the limit allows."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return min(soft, 1 << 20) - 1


@dataclass(frozen=True)
class Expected:
    """A step for a kernel side, with what its model saw (``model``) and how
    to wait for it: whether it may signal ``late``, and the ``timing``."""

    step: Step
    late: bool
    model: Observation
    timing: Timing


class Side:
    """One device and the eventfds, closed number and non-eventfd it uses.

    ``batch``: how many steps the engine may hand ``observe_many`` at once.
    Here that saves nothing, so one; a side whose device is elsewhere
    (``RemoteSide``) takes more, one round trip for all of them.
    """

    batch = 1

    def __init__(
        self,
        device: Device,
        slots: int,
        closed_fd: int | None = None,
        reopen: Callable[[Device], Device] | None = None,
    ) -> None:
        self.device = device
        self._reopen = reopen or (lambda dev: dev.reopen())
        self.eventfds = [EventFd() for _ in range(slots)]
        self._poller = select.poll()
        for efd in self.eventfds:
            self._poller.register(efd.fd, select.POLLIN)
        self._not_eventfd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        closed = closed_fd_number() if closed_fd is None else closed_fd
        self.resolve = FdResolver([e.fd for e in self.eventfds], closed, self._not_eventfd)

    def play(self, step: Step) -> int | str:
        """The step's return value, or its errno's name."""
        return self.call(step)[0]

    def call(self, step: Step) -> tuple[int | str, IrqInfoAnswer | None]:
        """``play``, and for a ``GetIrqInfo`` that succeeded its (flags, count)."""
        try:
            if isinstance(step, GetIrqInfo):
                info = self.device.irq_info(step.index)
                return 0, (int(info.flags), info.count)
            return self._play(step), None
        except VfioError as err:
            return errno_name(err.errno or 0), None

    def command(self, step: Step) -> int | None:
        """PCI_COMMAND as the device shows it after ``step``, for the steps that
        can change it (``COMMAND_STEPS``); None for the others or if unreadable."""
        if not isinstance(step, COMMAND_STEPS):
            return None
        try:
            return int(_U16.unpack(self.device.read_region(_CONFIG, PCI_COMMAND, 2))[0])
        except VfioError:
            return None

    def _play(self, step: Step) -> int:
        dev = self.device
        if isinstance(step, SetIrqs):
            return dev.set_irqs(step.realize(self.resolve))
        if isinstance(step, Raise | Clear):
            stimulus = dev.stimulus
            if stimulus is None:
                raise VfioError(_errno.ENODEV, "stimulus", "this device cannot raise interrupts")
            if isinstance(step, Raise):
                stimulus.raise_irq(step.value)
            else:
                stimulus.clear_irq(step.value)
            return 0
        if isinstance(step, Reset):
            dev.reset()
            return 0
        if isinstance(step, Reopen):
            self.device = self._reopen(dev)
            return 0
        if isinstance(step, WriteEventfd):
            self.eventfds[step.slot].write(1)
            return 0
        if isinstance(step, PendEventfd):
            return 0  # the write comes after the read: after_read()
        if isinstance(step, SetCommand):
            dev.write_region(_CONFIG, PCI_COMMAND, _U16.pack(step.value & 0xFFFF))
            return 0
        if isinstance(step, BarWrite):
            data = struct.pack("<I", step.value & 0xFFFFFFFF)
            dev.write_region(u.VFIO_PCI_BAR0_REGION_INDEX, step.offset, data)
            return 0
        assert isinstance(step, SetDisIntx), step  # GetIrqInfo is played by call()
        cmd = _U16.unpack(dev.read_region(_CONFIG, PCI_COMMAND, 2))[0]
        cmd = cmd | CMD_INTX_DISABLE if step.disable else cmd & ~CMD_INTX_DISABLE
        dev.write_region(_CONFIG, PCI_COMMAND, _U16.pack(cmd))
        return 0

    def observe(
        self, step: Step, late: bool, expected: Sequence[int], timing: Timing
    ) -> Observation:
        """Play ``step`` and observe it: result, counters (waited for as
        ``timing`` says when the step was ``late`` and the device may still
        signal), GET_IRQ_INFO's answer and PCI_COMMAND.  One call, so that a
        side whose device is elsewhere (``RemoteSide``) takes one round trip."""
        result, info = self.call(step)
        command = self.command(step)
        late = not self.device.quiesce() and late
        got = timing.read(self.read, expected, late)
        self.after_read(step)
        return Observation(result, tuple(got), info, command)

    def observe_many(self, items: Sequence[Expected]) -> list[Observation]:
        """``observe`` each step in order, stopping after the first whose
        observation differs from the one expected of it: a kernel that has
        disagreed is in a state no model vouches for, so it is sent nothing
        more (as one step at a time would do)."""
        seen = []
        for item in items:
            obs = self.observe(item.step, item.late, item.model.counters, item.timing)
            seen.append(obs)
            if obs != item.model:
                break
        return seen

    def read(self) -> list[int]:
        """Every slot's counter (reading drains it).  One poll finds the slots
        that hold a count; only those are read (a syscall apiece is dear
        under TCG, and most slots are empty after most steps)."""
        ready = {fd for fd, _ in self._poller.poll(0)}
        return [e.read() if e.fd in ready else 0 for e in self.eventfds]

    def clean(self, steps: Sequence[Step], settle_s: float = 0.0) -> None:
        """Play ``steps`` uncompared, then drop every count, after ``settle_s``
        when the device may still deliver (one round trip for a remote side)."""
        for step in steps:
            self.play(step)
        if not self.device.quiesce() and settle_s:
            time.sleep(settle_s)
        self.read()

    def after_read(self, step: Step) -> None:
        """What a step does once its counters are read: a ``PendEventfd``'s write."""
        if isinstance(step, PendEventfd):
            self.eventfds[step.slot].write(1)

    def close(self) -> None:
        """Close the eventfds (not the device: whoever opened it closes it)."""
        for efd in self.eventfds:
            efd.close()
        os.close(self._not_eventfd)


@runtime_checkable
class PlaysSides(Protocol):
    """A device whose steps are played where it is (``RemoteDevice``)."""

    def side(self, slots: int) -> Side: ...


def side_of(device: Device, slots: int, reopen: Callable[[Device], Device] | None = None) -> Side:
    """The ``Side`` that plays steps on ``device``: here, or where the device is."""
    if isinstance(device, PlaysSides):
        if reopen is not None:
            raise ValueError(f"{device.name}: a remote device reopens itself; pass no reopen")
        return device.side(slots)
    return Side(device, slots, reopen=reopen)


_PEERS: ThreadPoolExecutor | None = None


def _peer_pool() -> ThreadPoolExecutor:
    global _PEERS
    if _PEERS is None:
        _PEERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lockstep-peer")
    return _PEERS


class Lockstep:
    """A kernel-backed side and a model-backed side, stepped together.

    The model side is a ``SimDevice`` (``twin_of``); it answers at once.
    The kernel side may be real (its late signals are waited for as
    ``timing`` says) or simulated (then both sides are quiesced after each
    step and nothing is late).

    ``peers``: more kernels (each a ``Lockstep`` with its own model), played
    the same steps; each must agree with its model and, observation for
    observation, with this kernel (kernel-vs-kernel: a patched kernel against
    a stock one needs no model to differ).
    """

    def __init__(
        self,
        kernel: Side,
        model: Side,
        timing: Timing | None = None,
        peers: Sequence[Lockstep] = (),
    ) -> None:
        self.kernel = kernel
        self.model = model
        self.timing = timing or Timing()
        self.steps = 0
        self.late = LateSignals()
        self.peers = list(peers)
        self._queue: list[tuple[int, list[Expected]]] = []  # pushed, not yet flushed

    @property
    def label(self) -> str:
        """The kernel side's device and kernel, as a disagreement names it."""
        device = self.kernel.device
        return f"{device.name} [{device.kernel}]"

    def step(self, step: Step, settle: bool = False) -> tuple[Played, Disagreement | None]:
        """Play ``step`` on every side: what this kernel did, and the first
        disagreement (with a model, or between kernels).

        ``settle``: wait at least ``SETTLE_S`` before reading, whatever the
        step, so that anything still in flight from earlier steps is counted
        here (the end of a fuzzer example, whose timing does not settle).

        Steps ``push``ed before and not yet flushed are played first."""
        self.push(step, settle)
        played, bad = self.flush()
        return played[-1], bad

    def push(self, step: Step, settle: bool = False) -> Observation:
        """Play ``step`` on every model now and queue it for the kernels; the
        answer is this run's model's.  ``flush`` plays the queue on the
        kernels and compares; ``due`` says when the queue is a batch.

        The rules that choose the next step look only at the models, so a
        kernel may lag behind by a batch: what it answers is compared step
        by step as before, only later (one round trip a batch)."""
        self.steps += 1
        runs = [self, *self.peers]
        # Every model answers first: a step one says would oops its kernel
        # (KernelOops) raises here, before any kernel is sent it; and its
        # counts are what its kernel is waited for.
        queued = []
        for run in runs:
            model = run.model.observe(step, False, (), _AT_ONCE)
            late, timing = run.late.after(step), run.timing
            if settle:
                late, timing = True, replace(timing, settle_s=max(timing.settle_s, SETTLE_S))
            # Loopback signals are synchronous; only late paths get time to converge.
            queued.append(Expected(step, late, model, timing))
        self._queue.append((self.steps, queued))
        return queued[0].model

    @property
    def due(self) -> bool:
        """Is the queue a whole batch (``Side.batch`` of this kernel side)?"""
        return len(self._queue) >= self.kernel.batch

    @property
    def queued(self) -> int:
        return len(self._queue)

    def flush(self) -> tuple[list[Played], Disagreement | None]:
        """Play the queued steps on every kernel and compare each with its
        model and with this kernel: what this kernel did, step by step, up to
        and including the first disagreement (and that disagreement)."""
        queue, self._queue = self._queue, []
        runs = [self, *self.peers]
        batches = [[expected[n] for _, expected in queue] for n in range(len(runs))]
        # Peers' kernels play at the same time as this one (each in its own
        # guest, waiting on its own channel): kernel-vs-kernel costs one
        # round trip a batch, not one a kernel.
        pending = [
            _peer_pool().submit(run.kernel.observe_many, batch)
            for run, batch in zip(runs[1:], batches[1:], strict=True)
        ]
        kernels = [self.kernel.observe_many(batches[0]), *(f.result() for f in pending)]
        played: list[Played] = []
        for k, (step_no, expected) in enumerate(queue):
            step = expected[0].step
            # A kernel side stops after its first disagreement, so every side
            # has an answer for each step up to the first one.
            seen = [answers[k] for answers in kernels]
            played.append(Played(step, seen[0]))
            for run, want, kernel in zip(runs, expected, seen, strict=True):
                if kernel != want.model:
                    names = (run.label, "its model") if self.peers else ()
                    return played, Disagreement(step_no, step, kernel, want.model, *names)
            for run, kernel in zip(runs[1:], seen[1:], strict=True):
                if kernel != seen[0]:
                    names = (self.label, run.label)
                    return played, Disagreement(step_no, step, seen[0], kernel, *names)
        return played, None

    def play(self, step: Step) -> Disagreement | None:
        return self.step(step)[1]

    def discard(self) -> None:
        """Forget steps pushed and never flushed (their example ended by an
        exception before they were compared)."""
        self._queue.clear()

    def clean(self, steps: list[Step], command: int | None = None) -> None:
        """Play ``steps`` on both sides uncompared, clear the device, drop counts;
        then write ``command`` to PCI_COMMAND (clearing edu turns bus mastering on).
        Every peer too."""
        if self._queue:
            raise RuntimeError("clean() with steps pushed and not flushed: flush() first")
        for peer in self.peers:
            peer.clean(steps, command)
        # A late signal is dropped, not counted in the next step (at least
        # SETTLE_S: the fuzzer's own timing does not settle).
        settle_s = max(self.timing.settle_s, SETTLE_S) if self.late.raised else 0.0
        for side in (self.kernel, self.model):
            tail: list[Step] = [Clear()] if side.device.stimulus is not None else []
            tail += [] if command is None else [SetCommand(command)]
            side.clean([*steps, *tail], settle_s)
        self.late.raised = False

    def close(self) -> None:
        """Close both sides' eventfds and both devices, and every peer's."""
        for peer in self.peers:
            peer.close()
        self.kernel.close()
        self.model.close()
        self.kernel.device.close()
        self.model.device.close()
