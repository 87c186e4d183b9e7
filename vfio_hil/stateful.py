"""A hypothesis state machine that drives a device and the model in lockstep.

``make_machine(open_kernel)`` returns a ``RuleBasedStateMachine`` class whose
rules play every kind of step (``vfio_hil._lockstep.steps``) on the device
and on its simulated twin through the lockstep engine (``vfio_hil._lockstep``):
SET_IRQS requests of every kind (from ``vfio_hil.strategies``), device-raised interrupts where the
device has a stimulus, reset, close/reopen, writes to eventfds (an
unmask eventfd fires), PCI_COMMAND INTx-disable writes and GET_IRQ_INFO on
every index (flags and count compared).  After every step
both sides must return the same value or errno and show the same counter on
every eventfd; otherwise the step raises ``Divergence`` with the whole
sequence, and the shrunk sequence is written as a scenario file and a C
program (``vfio_hil._fuzz.export``).

The device is opened once, at the first example; every example starts from a
clean device: the cleanup steps disable every index, clear INTx-disable and
the device's interrupt status (simulated devices are also reopened), so no
function-scoped fixture is needed.

```python
from vfio_hil import SimDevice
from vfio_hil.stateful import make_machine

TestEdu = make_machine(lambda: SimDevice.edu(kernel="6.12")).TestCase
```

On real hardware: ``make_machine(lambda: open_device("0000:00:03.0"))`` (the
model is the running kernel's profile; pass ``profile=`` to choose another).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from hypothesis import Phase, note, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.database import ExampleDatabase, InMemoryExampleDatabase, MultiplexedDatabase
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from vfio_hil._device import Device
from vfio_hil._diff.cases import SLOTS
from vfio_hil._fuzz.context import OUT_ENV, FuzzStats, MachineContext
from vfio_hil._fuzz.profiles import (
    PROFILE_NAMES,
    default_seed,
    fuzz_settings,
    register_profiles,
)
from vfio_hil._fuzz.sample import fixed_sample
from vfio_hil._hw import (
    CMD_INTX_DISABLE,
    CMD_IO,
    CMD_MASTER,
    CMD_MEMORY,
    CMD_SERR,
    EDU_IRQ_ACK,
    EDU_IRQ_RAISE,
    EDU_LIVENESS,
)
from vfio_hil._irq import IrqIndex, _flag
from vfio_hil._lockstep import (
    BarWrite,
    Clear,
    FdRef,
    GetIrqInfo,
    PendEventfd,
    Played,
    Raise,
    Reopen,
    Reset,
    SetCommand,
    SetDisIntx,
    SetIrqs,
    Step,
    WriteEventfd,
)
from vfio_hil._lockstep.engine import Observation, describe_info
from vfio_hil._model import KernelOops, KernelProfile, kernel_profile
from vfio_hil._sim.device import SimDevice

__all__ = [
    "OUT_ENV",
    "DifferentialMachine",
    "Divergence",
    "FuzzStats",
    "fuzz_settings",
    "make_machine",
]

_NONE_TRIGGER = 0x21  # ACTION_TRIGGER | DATA_NONE
_EVENTFD_TRIGGER = 0x24  # ACTION_TRIGGER | DATA_EVENTFD
_UNMASK_EVENTFD = 0x14  # ACTION_UNMASK | DATA_EVENTFD
_BOOL_TRIGGER = 0x22  # ACTION_TRIGGER | DATA_BOOL
_SWEEP_BYTES = (1, 0x80, 0xFF, 0)  # shrinks toward 1: a BOOL sweep that signals all
_RAISE_VALUES = (1, 2, 3, 0x80000000)
_CLEAR_VALUES = (0xFFFFFFFF, 1, 2)
_FOCUS = 3  # an enabled index is drawn this many times as often as another
_SPOILERS: tuple[FdRef, ...] = (-1, "closed", "notfd", -2)
_COMMAND_BITS = (CMD_MEMORY, CMD_MASTER, CMD_INTX_DISABLE, CMD_IO, CMD_SERR)
_BAR_REGISTERS = (EDU_IRQ_RAISE, EDU_IRQ_ACK, EDU_LIVENESS)

_Settings = settings  # make_machine's parameter of that name hides the class
register_profiles()


class Divergence(AssertionError):  # noqa: N818 - names the event, as KernelOops does
    """The device and the model disagreed on a step."""


def _show(played: Played) -> str:
    result = played.kernel.result
    shown = f"returned {result}" if isinstance(result, int) else f"errno {result}"
    if played.kernel.info is not None:
        shown += f" ({describe_info(played.kernel.info)})"
    fired = [f"e{k}={n}" for k, n in enumerate(played.kernel.counters) if n]
    return shown + (f"; {' '.join(fired)}" if fired else "")


def _present(index: int) -> Callable[[DifferentialMachine], bool]:
    return lambda self: bool(self.context.counts.get(index))


def _has_group(group: str) -> Callable[[DifferentialMachine], bool]:
    return lambda self: bool(self.context.group_indexes.get(group))


def _has_stimulus(self: DifferentialMachine) -> bool:
    return self.context.run.kernel.device.stimulus is not None


class DifferentialMachine(RuleBasedStateMachine):
    """Rules for every step kind; each step is played on both sides and compared.

    Use ``make_machine``: it binds a subclass to a device.
    """

    context: ClassVar[MachineContext]

    def __init__(self) -> None:
        super().__init__()
        self.trace: list[Played] = []
        self.diverged = False
        self.cut_short = False  # a step the model says would oops ended the example
        self.context.run  # noqa: B018 - open the device (and learn its counts) now

    @classmethod
    def close_device(cls) -> None:
        """Close the device and its twin (the next example opens them again)."""
        cls.context.close()

    @classmethod
    def stats(cls) -> FuzzStats:
        return cls.context.stats

    @classmethod
    def run(cls, chosen: settings | None = None) -> None:
        """Run the machine (``TestCase.settings`` unless given) with a sample
        that is a function of its seed only (``vfio_hil._fuzz.sample``).

        A device behind an agent is searched in batches (``play``) and a
        failure shrunk step by step: batched, a failure surfaces at the end of
        its batch, and the steps drawn meanwhile cloud hypothesis' shrinker
        (measured: 15 steps against 5 from the same seed, in 4x the time).
        So the search runs without the shrink phase; a failure it finds goes
        through an example database to a second run that replays it one step
        a round trip and shrinks it (a second run, so hypothesis never sees
        one choice sequence stop at two places)."""
        chosen = chosen or cls.TestCase.settings
        ctx = cls.context
        with fixed_sample():
            phases = tuple(chosen.phases)
            if Phase.shrink not in phases or not ctx.batches():
                run_state_machine_as_test(cls, settings=chosen)
                return
            both: ExampleDatabase = InMemoryExampleDatabase()
            if chosen.database is not None:
                both = MultiplexedDatabase(both, chosen.database)
            searching = [p for p in phases if p is not Phase.shrink]
            search = settings(chosen, database=both, phases=searching)
            ctx.batching, ctx.export_now = True, False
            try:
                run_state_machine_as_test(cls, settings=search)
                return
            except Divergence as found:
                first = found
            finally:
                ctx.batching, ctx.export_now = False, True
            try:
                shrink = settings(chosen, database=both, phases=[Phase.reuse, Phase.shrink])
                run_state_machine_as_test(cls, settings=shrink)
            finally:
                ctx.batching = True
        raise Divergence(
            f"{first}\n(not shrunk: replayed one step at a time, the example did not fail again)"
        ) from None

    # --- the step ---------------------------------------------------------------------

    def play(self, step: Step, settle: bool = False) -> Observation | None:
        """Play ``step`` on both sides; raise ``Divergence`` if they disagree.
        ``settle``: read only after late signals of earlier steps had time to land.

        The model answers at once (its observation is returned; None for a
        step left out); the kernel side may lag by a batch (``Lockstep.push``:
        one round trip for several steps when the device is behind an agent),
        so a divergence is raised at the step that ends the batch, naming the
        step where it happened.  ``teardown`` flushes what is left."""
        ctx = self.context
        if ctx.would_loop(step):
            if currently_in_test_context():
                note(f"skipped {step!r}: one eventfd as INTx trigger and unmask loops")
            return None
        if ctx.would_oops_later(step):
            if currently_in_test_context():
                note(f"skipped {step!r}: its re-fire with no INTx trigger would oops later")
            return None
        if ctx.undecided(step):
            if currently_in_test_context():
                note(f"skipped {step!r}: an MSI to a vector with no trigger (open finding)")
            return None
        if self.cut_short:
            return None
        try:
            model = ctx.run.push(step, settle)
        except KernelOops as oops:
            # The model answers first, so the kernel side was never sent it
            # (a kernel before the 2024 INTx fix would crash: any_request can
            # draw the INTx-without-trigger loopback that sweeps leave out).
            # The model may have changed state before it oopsed, so the
            # example ends here, as the differential check cuts a case short;
            # the steps before it are still compared.
            self.flush()
            self.cut_short = True
            if currently_in_test_context():
                note(f"example cut short at {step!r}: the model says it would oops ({oops})")
            return None
        if not ctx.batching or ctx.run.due:
            self.flush()
        return model

    def flush(self) -> None:
        """Play the queued steps on the kernel side and compare them."""
        ctx = self.context
        if not ctx.run.queued:
            return
        played_now, bad = ctx.run.flush()
        for played in played_now:
            ctx.stats.steps += 1
            self.trace.append(played)
            if currently_in_test_context():
                note(f"step {len(self.trace)}: {played.step!r} -> {_show(played)}")
        if bad is not None:
            self.diverged = True
            where = ctx.failed(self.trace, bad)
            steps = "\n".join(f"  {k}. {p.step!r}" for k, p in enumerate(self.trace, 1))
            who = f"{bad.left} and {bad.right}" if ctx.run.peers else None
            who = who or f"{ctx.run.kernel.device.name} and the model"
            raise Divergence(
                f"{who} disagree after {len(self.trace)} steps:\n{steps}\n{bad}{where}"
            )

    def _focused(self, data: st.DataObject, group: str) -> SetIrqs:
        """A valid request of ``group``, mostly on an index the model has enabled.

        Steering, so that state builds up even when hypothesis' swarm testing
        switches the ``enable`` rule off for an example: an enabled index is
        drawn ``_FOCUS`` times as often as another, and a request for an index
        the model side has not enabled is, half the time, that index's enable
        (TRIGGER|EVENTFD) instead; a loopback on an enabled index is a third
        of the time a sweep of all of it (``_sweep``: NONE, or BOOL with high
        bytes) and a sixth of the time its disable (``_disable``: any start).
        """
        ctx = self.context
        indexes = ctx.group_indexes.get(group, [])
        active = ctx.active_indexes()
        pool = indexes + [i for i in indexes if i in active] * _FOCUS
        index = data.draw(st.sampled_from(pool), label="index")
        enable_first = group not in ("enable", "invalid") and index not in active
        has_enable = f"enable:{index}" in ctx.strategies
        if enable_first and has_enable and data.draw(st.booleans(), label="enable it first"):
            group = "enable"
        if group == "loopback" and index in ctx.sweepable():
            how = data.draw(st.integers(0, 6), label="how")  # 0-2 as drawn, 3-4 sweep, 5-6 off
            if how >= 5:
                return self._disable(data, index)
            if how >= 3:
                return self._sweep(data, index)
        return data.draw(ctx.strategies[f"{group}:{index}"], label="step")

    def _spoil(self, data: st.DataObject, step: SetIrqs) -> SetIrqs:
        """A third of the time, one entry after the first of an fd array becomes
        a hole (-1, which stays unassigned) or a bad fd (what a failure unwinds
        depends on where it is: vfio_msi_set_block())."""
        fds = step.fds
        if not fds or len(fds) < 2 or data.draw(st.integers(0, 2), label="spoil") != 2:
            return step
        at = data.draw(st.integers(1, len(fds) - 1), label="spoiled entry")
        bad = data.draw(st.sampled_from(_SPOILERS), label="spoiler")
        return dataclasses.replace(step, fds=(*fds[:at], bad, *fds[at + 1 :]))

    def _disable(self, data: st.DataObject, index: int) -> SetIrqs:
        """TRIGGER|NONE count 0, half the time with a start in 0..count+1.

        vfio-pci disables whatever ``start`` says (vfio_pci_set_msi_trigger()
        and vfio_pci_set_intx_trigger() look at count only) once the range is
        valid; a start at or past the end is refused.
        """
        count = self.context.counts.get(index, 1)
        start = 0
        if data.draw(st.booleans(), label="disable with a start"):
            start = data.draw(st.integers(0, count + 1), label="start")
        return SetIrqs(_NONE_TRIGGER, index, start, 0)

    def _sweep(self, data: st.DataObject, index: int) -> SetIrqs:
        """A sweep of an enabled index; a quarter of the time TRIGGER|BOOL whose
        bytes mix 1, 0x80, 0xff and 0 (any non-zero byte signals its vector)."""
        sweep = self.context.sweep(index)
        if data.draw(st.integers(0, 3), label="sweep with DATA_BOOL") < 3:
            return sweep
        byte = st.sampled_from(_SWEEP_BYTES)
        bools = bytes(data.draw(st.lists(byte, min_size=sweep.count, max_size=sweep.count)))
        return SetIrqs(_BOOL_TRIGGER, index, sweep.start, sweep.count, bools=bools)

    # --- rules ------------------------------------------------------------------------

    @initialize()
    def clean_device(self) -> None:
        self.context.begin_example()
        self.trace = []
        self.diverged = False
        self.cut_short = False

    def teardown(self) -> None:
        """End every example with a sweep of every index the device has, not only
        those the model side enabled: hidden trigger state that no step looked at
        (a trigger kept, lost or moved, on either side) shows here.  A sweep of a
        disabled index is EINVAL on both sides when they agree."""
        if self.diverged or self.cut_short:
            return
        self.flush()
        if self.trace:
            # The first read settles: a signal still in flight from the last
            # steps (the fuzzer's timing does not wait for extras) counts here.
            final: list[Step] = [
                self.context.sweep(i) for i in sorted(self.context.probe_indexes())
            ]
            for n, step in enumerate(final or [GetIrqInfo(0)]):
                self.play(step, settle=n == 0)
            self.flush()

    @precondition(_has_group("enable"))
    @rule(data=st.data())
    def enable(self, data: st.DataObject) -> None:
        """TRIGGER|EVENTFD: enable, swap, de-assign (-1), bad fds.

        A call that failed on an index that stays enabled is followed by a
        sweep of that index: what a failure leaves behind (vectors unwound to
        unassigned, an old trigger kept) is part of its contract.
        """
        step = self._spoil(data, self._focused(data, "enable"))
        seen = self.play(step)
        failed = seen is not None and isinstance(seen.result, str)
        if failed and step.index in self.context.sweepable():
            self.play(self.context.sweep(step.index))

    @precondition(_has_group("loopback"))
    @rule(data=st.data())
    def loopback(self, data: st.DataObject) -> None:
        """TRIGGER|NONE and TRIGGER|BOOL: loopback; TRIGGER|NONE count 0 disables."""
        self.play(self._focused(data, "loopback"))

    @precondition(_present(IrqIndex.INTX))
    @rule(data=st.data())
    def intx_mask(self, data: st.DataObject) -> None:
        """INTx MASK and UNMASK with NONE or BOOL."""
        self.play(self._focused(data, "intx_mask"))

    @precondition(_present(IrqIndex.INTX))
    @rule(data=st.data())
    def unmask_eventfd(self, data: st.DataObject) -> None:
        """INTx UNMASK|EVENTFD: register or unregister the unmask eventfd."""
        self.play(self._focused(data, "unmask_eventfd"))

    @precondition(lambda self: bool(self.context.probe_indexes()))
    @rule(data=st.data())
    def probe(self, data: st.DataObject) -> None:
        """Loopback over the whole of an index: every trigger shows.  Mostly an
        index the model enabled; a quarter of the time any index the device has,
        so state only the device kept (a trigger that survived a reset) is probed."""
        active = sorted(self.context.sweepable())
        if not active or data.draw(st.integers(0, 3), label="probe any index") == 3:
            active = sorted(self.context.probe_indexes())
        self.play(self._sweep(data, data.draw(st.sampled_from(active), label="index")))

    @rule(data=st.data())
    def invalid_request(self, data: st.DataObject) -> None:
        """A request every device with these counts refuses."""
        self.play(self._focused(data, "invalid"))

    @rule(data=st.data())
    def any_request(self, data: st.DataObject) -> None:
        """A valid or invalid request of any kind."""
        self.play(data.draw(self.context.strategies["any"], label="step"))

    @precondition(_has_stimulus)
    @rule(value=st.sampled_from(_RAISE_VALUES))
    def raise_irq(self, value: int) -> None:
        """The device raises interrupt status bits (edu: INTx, or MSI vector 0)."""
        self.play(Raise(value))

    @precondition(_has_stimulus)
    @rule(value=st.sampled_from(_CLEAR_VALUES))
    def clear_irq(self, value: int) -> None:
        """The device clears interrupt status bits."""
        self.play(Clear(value))

    @rule(step=st.sampled_from([Reset(), Reset(), Reopen()]))
    def reset_or_reopen(self, step: Reset | Reopen) -> None:
        """VFIO_DEVICE_RESET, or the last close and an open (a third of the time)."""
        self.play(step)

    @rule(slot=st.integers(0, SLOTS - 1))
    def write_eventfd(self, slot: int) -> None:
        """Write 1 to an eventfd slot: a registered unmask eventfd unmasks INTx."""
        self.play(WriteEventfd(slot))

    @rule(slot=st.integers(0, SLOTS - 1), then=st.integers(0, 2))
    def pending_eventfd(self, slot: int, then: int) -> None:
        """Leave a count in an eventfd, then (mostly) register it while it holds
        the count: as INTx's unmask eventfd (the virqfd unmasks at once) or as
        the trigger of vector 0 of an index; counts are compared as ever."""
        self.play(PendEventfd(slot))
        fds = (f"e{slot}",)
        intx = IrqIndex.INTX
        if then == 0 and self.context.counts.get(intx):
            self.play(SetIrqs(_UNMASK_EVENTFD, intx, 0, 1, fds=fds))
        elif then == 1 and self.context.counts:
            index = min(self.context.active_indexes() or set(self.context.counts))
            self.play(SetIrqs(_EVENTFD_TRIGGER, index, 0, 1, fds=fds))

    @rule(index=st.integers(0, len(IrqIndex)))
    def irq_info(self, index: int) -> None:
        """GET_IRQ_INFO on any index, also one the device lacks and the first past
        VFIO_PCI_NUM_IRQS (EINVAL; a coverage cell no other rule reached): flags
        and count compared."""
        self.play(GetIrqInfo(index))

    @precondition(_present(IrqIndex.INTX))
    @rule(disable=st.booleans())
    def intx_disable(self, disable: bool) -> None:
        """Set or clear PCI_COMMAND.INTx-disable through config space."""
        self.play(SetDisIntx(disable))

    @rule(
        bits=st.lists(st.sampled_from(_COMMAND_BITS), unique=True),
        everything=st.integers(0, 7),
    )
    def command(self, bits: list[int], everything: int) -> None:
        """Write PCI_COMMAND as a driver does: memory, bus master, INTx-disable,
        I/O, SERR in any mix; 1 in 8 times 0xffff.  What it reads back is compared."""
        value = 0xFFFF if everything == 7 else sum(bits)
        self.play(SetCommand(value))

    @precondition(_has_stimulus)
    @rule(
        offset=st.sampled_from(_BAR_REGISTERS),
        value=st.sampled_from(_RAISE_VALUES + _CLEAR_VALUES),
    )
    def bar_write(self, offset: int, value: int) -> None:
        """A raw write to edu's BAR0 with PCI_COMMAND as it is: EIO with memory
        decoding off, an MSI dropped with bus mastering off."""
        self.play(BarWrite(offset, value))


def make_machine(
    open_kernel: Callable[[], Device],
    twin_factory: Callable[[Device], SimDevice] | None = None,
    reopen: Callable[[Device], Device] | None = None,
    *,
    profile: KernelProfile | None = None,
    settings: settings | str = "ci",
    out_dir: Path | str | None = None,
    settle_s: float | None = None,
    export: bool = True,
    name: str = "DifferentialMachine",
    progress: Callable[[FuzzStats], None] | None = None,
    seed: int | None = None,
) -> type[DifferentialMachine]:
    """A state machine class bound to one device; ``.TestCase`` runs it under pytest.

    open_kernel:  opens the device under test (``open_device(addr)`` or a
                  ``SimDevice`` factory); called once, at the first example.
    twin_factory: builds the model side from the open device (default: a
                  SimDevice with the device's capabilities and ``profile``,
                  which defaults to a simulated device's own kernel or the
                  running kernel for a real one).
    reopen:       closes and reopens the device (default: the device's own
                  ``reopen``, which opens it again the way it was opened).
    settings:     a profile name (``ci``, ``dev``, ``fuzz``) or a settings object.
    out_dir:      where failing runs write their counterexamples (default:
                  ``VFIO_HIL_FUZZ_OUT``, else ``$VFIO_HIL_RESULTS/counterexamples``,
                  else ``./vfio-hil-counterexamples``); ``export=False`` writes none.
    settle_s:     how long steps that may signal late wait on a real device
                  before the first read (default 0: ``timing.FUZZ`` polls
                  until the model's counts arrive, and every example ends
                  with a settled read); a simulated device is quiesced instead.
    progress:     called with the statistics every 10 s of a run.
    seed:         the run's sample is a function of this number (and of the
                  strategies, the device and hypothesis' version), not of the
                  source text or name of the class; with a seed no example
                  database is read or written.  Default: ``CI_SEED`` (0) for a
                  derandomized profile (``ci``), random for ``dev`` and ``fuzz``.
    """
    profile = _check_arguments(
        open_kernel, twin_factory, reopen, profile, settings, out_dir, settle_s, export, name
    )
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable or None, not {progress!r}")
    context = MachineContext(
        _checked_open(open_kernel),
        twin_factory,
        reopen,
        profile,
        Path(out_dir) if out_dir is not None else None,
        settle_s,
        export,
    )
    context.progress = progress
    chosen = fuzz_settings(settings) if isinstance(settings, str) else settings
    namespace: dict[str, Any] = {"context": context, "__doc__": DifferentialMachine.__doc__}
    machine: type[DifferentialMachine] = type(name, (DifferentialMachine,), namespace)
    use_seed = default_seed(chosen) if seed is None else seed
    if use_seed is not None:
        # hypothesis' @seed: overrides derandomize's digest of the class source.
        machine = hypothesis_seed(use_seed)(machine)
        if not chosen.derandomize:
            chosen = _Settings(chosen, database=None)  # replays would precede the sample
    machine.TestCase.settings = chosen

    def run_test(case: Any) -> None:
        machine.run(case.settings)

    machine.TestCase.runTest = run_test  # type: ignore[assignment,method-assign]
    return machine


def _check_arguments(
    open_kernel: object,
    twin_factory: object,
    reopen: object,
    profile: object,
    settings: object,
    out_dir: object,
    settle_s: object,
    export: object,
    name: object,
) -> KernelProfile | None:
    """make_machine's arguments, each wrong one named before any run; the
    profile as a ``KernelProfile`` (a kernel version str is read as one)."""
    if not callable(open_kernel):
        raise TypeError(
            f"open_kernel must be a callable that opens the device (a factory such as "
            f"SimDevice.edu or lambda: open_device(ADDR)), not {open_kernel!r}"
        )
    for what, value in (("twin_factory", twin_factory), ("reopen", reopen)):
        if value is not None and not callable(value):
            raise TypeError(f"{what} must be callable or None, not {value!r}")
    if isinstance(profile, str):
        profile = kernel_profile(profile)
    elif profile is not None and not isinstance(profile, KernelProfile):
        raise TypeError(
            "profile must be a KernelProfile (kernel_profile('6.12')), a kernel version "
            f"str or None, not {type(profile).__name__} {profile!r}"
        )
    if not isinstance(settings, str | _Settings):
        raise TypeError(
            f"settings must be a profile name ({', '.join(PROFILE_NAMES)}) or a hypothesis "
            f"settings object, not {type(settings).__name__} {settings!r}"
        )
    if out_dir is not None and not isinstance(out_dir, str | os.PathLike):
        raise TypeError(
            f"out_dir must be a directory path (str or Path) or None, "
            f"not {type(out_dir).__name__} {out_dir!r}"
        )
    if settle_s is not None and (
        not isinstance(settle_s, int | float)
        or isinstance(settle_s, bool)
        or not 0 <= settle_s < math.inf
    ):
        raise ValueError(f"settle_s must be a number of seconds >= 0 or None, not {settle_s!r}")
    _flag("export", export)
    if not isinstance(name, str):
        raise TypeError(f"name must be a str (the class name), not {type(name).__name__} {name!r}")
    return profile


def _checked_open(open_kernel: Callable[[], Device]) -> Callable[[], Device]:
    """``open_kernel``, checked at the first example to return a Device."""

    def open_checked() -> Device:
        device = open_kernel()
        if not all(callable(getattr(device, m, None)) for m in _DEVICE_METHODS):
            raise TypeError(
                f"open_kernel must return a Device (a SimDevice, open_device(...)), "
                f"but {open_kernel!r} returned {type(device).__name__} {device!r}"
            )
        return device

    return open_checked


_DEVICE_METHODS = ("irq_info", "set_irqs", "read_region", "write_region", "close")
