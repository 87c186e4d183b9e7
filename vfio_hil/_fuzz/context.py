"""What a machine class shares across examples: the device, its twin, the run.

``MachineContext`` opens the device at the first example, builds the twin
and the request strategies from its GET_IRQ_INFO counts, starts each example
clean, counts examples and steps for the bench, and writes the shrunk
counterexample when hypothesis replays it for the last time.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st
from hypothesis.control import current_build_context
from hypothesis.errors import InvalidArgument

from vfio_hil._coverage.recorder import count_model_side, paused
from vfio_hil._device import Device
from vfio_hil._diff.cases import SLOTS, cleanup_steps
from vfio_hil._errors import VfioHilError
from vfio_hil._fuzz.export import write_counterexample
from vfio_hil._fuzz.facts import DeviceFacts
from vfio_hil._hw import EDU_IRQ_RAISE
from vfio_hil._irq import IrqIndex
from vfio_hil._lockstep import (
    BarWrite,
    Disagreement,
    Lockstep,
    PendEventfd,
    Played,
    Raise,
    Reopen,
    SetIrqs,
    Side,
    Step,
    Timing,
    WriteEventfd,
    irq_counts,
    side_of,
    twin_of,
)
from vfio_hil._lockstep.timing import FUZZ
from vfio_hil._model import KernelProfile
from vfio_hil._sim.device import SimDevice
from vfio_hil.strategies import requests

__all__ = [
    "OUT_ENV",
    "FuzzStats",
    "MachineContext",
    "check_out_dir",
    "default_out_dir",
    "is_final_run",
]

OUT_ENV = "VFIO_HIL_FUZZ_OUT"
PROGRESS_S = 10.0  # long runs say how far they got this often
_NONE_TRIGGER = 0x21  # ACTION_TRIGGER | DATA_NONE
_TRIGGER_EVENTFD = 0x24
_UNMASK_EVENTFD = 0x14
# Rule groups of valid requests -> their kinds (vfio_hil.strategies.KINDS).
_GROUPS = {
    "enable": ("trigger_eventfd",),
    "loopback": ("trigger_none", "trigger_bool"),
    "intx_mask": ("mask", "unmask"),
    "unmask_eventfd": ("unmask_eventfd",),
}


@dataclass
class FuzzStats:
    """What a machine class has run so far (the bench reads these)."""

    examples: int = 0
    steps: int = 0
    started: float = field(default_factory=time.monotonic)
    first_failure: tuple[int, float, int] | None = None  # examples, seconds, steps
    failures: int = 0
    last_failure: list[Played] = field(default_factory=list)
    final_failure: list[Played] = field(default_factory=list)  # hypothesis' shrunk one
    counterexamples: list[Path] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


def default_out_dir() -> Path:
    """VFIO_HIL_FUZZ_OUT, else $VFIO_HIL_RESULTS/counterexamples (the lab), else ./."""
    if os.environ.get(OUT_ENV):
        return Path(os.environ[OUT_ENV])
    if os.environ.get("VFIO_HIL_RESULTS"):
        return Path(os.environ["VFIO_HIL_RESULTS"]) / "counterexamples"
    return Path("vfio-hil-counterexamples")


def check_out_dir(path: Path, what: str) -> None:
    """Raise ``VfioHilError`` unless ``path`` is a directory that can be created
    and written; ``what`` names where the path came from (``--out``).

    Commands call this before any work, so a typo costs seconds, not a run.
    Directories it creates are removed again: an output directory appears
    only when there is something in it.
    """
    missing: list[Path] = []
    try:
        missing = [p for p in (path, *path.parents) if not p.exists()]
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".vfio-hil-probe-"):
            pass
    except OSError as exc:
        raise VfioHilError(
            f"{what} {path}: not a directory that can be created and written "
            f"({exc.strerror or exc})"
        ) from None
    finally:
        for created in missing:  # deepest first
            with contextlib.suppress(OSError):
                created.rmdir()


class MachineContext:
    """One machine class's device, twin and run, opened at the first example."""

    def __init__(
        self,
        open_kernel: Callable[[], Device],
        twin_factory: Callable[[Device], SimDevice] | None,
        reopen: Callable[[Device], Device] | None,
        profile: KernelProfile | None,
        out_dir: Path | None,
        settle_s: float | None,
        export: bool,
    ) -> None:
        self.open_kernel = open_kernel
        self.twin_factory = twin_factory
        self.reopen = reopen
        self.profile = profile
        self.out_dir = out_dir
        self.settle_s = settle_s
        self.export = export
        # DifferentialMachine.run: batched while it searches, step by step
        # while it shrinks; a search's final run exports nothing when a
        # shrink follows it.
        self.batching = True
        self.export_now = True
        self.stats = FuzzStats()
        self.progress: Callable[[FuzzStats], None] | None = None  # every PROGRESS_S
        self._reported = time.monotonic()
        self._run: Lockstep | None = None
        self.twin: SimDevice | None = None
        self.counts: dict[int, int] = {}
        self.facts: DeviceFacts | None = None
        self.strategies: dict[str, st.SearchStrategy[SetIrqs]] = {}
        self.group_indexes: dict[str, list[int]] = {}
        # More kernels played the same steps (kernel-vs-kernel), each with its own twin.
        self.peers: list[Callable[[], Device]] = []

    @property
    def run(self) -> Lockstep:
        if self._run is None:
            with paused():  # the twin builder's GET_IRQ_INFO is set-up, not a step
                self._run = self._open()
            run = self._run
            count_model_side(
                run.kernel.device,
                run.model.device,
                [(p.kernel.device, p.model.device) for p in run.peers],
            )
        return self._run

    def batches(self) -> bool:
        """Does the device take several steps a round trip (behind an agent)?"""
        return self.run.kernel.batch > 1

    def _open(self) -> Lockstep:
        device = self.open_kernel()
        if self.twin_factory is not None:
            twin = self.twin_factory(device)
        else:
            twin = twin_of(device, self.profile)
        self.twin = twin
        self.counts = irq_counts(device)
        self.facts = DeviceFacts.of(device, device.kernel, self.counts)
        self._strategies()
        timing = FUZZ if self.settle_s is None else Timing(settle_s=self.settle_s)
        peers = []
        for open_peer in self.peers:
            peer = open_peer()
            peers.append(Lockstep(side_of(peer, SLOTS), Side(twin_of(peer), SLOTS), timing))
        return Lockstep(
            side_of(device, SLOTS, reopen=self.reopen),
            Side(twin, SLOTS),
            timing,
            peers,
        )

    def _strategies(self) -> None:
        counts = self.counts
        for group, kinds in _GROUPS.items():
            for index, n in counts.items():
                try:
                    strategy = requests({index: n}, validity="valid", kinds=kinds)
                except InvalidArgument:
                    continue  # e.g. mask kinds on an index other than INTx
                self.strategies[f"{group}:{index}"] = strategy
                self.group_indexes.setdefault(group, []).append(index)
        self.strategies["invalid"] = requests(counts, validity="invalid")
        for index in counts:
            self.strategies[f"invalid:{index}"] = requests(
                counts, validity="invalid", indexes=[index]
            )
            self.group_indexes.setdefault("invalid", []).append(index)
        try:
            self.strategies["any"] = requests(counts, validity="mixed")
        except InvalidArgument:  # no index at all: only invalid requests exist
            self.strategies["any"] = self.strategies["invalid"]

    def _twin(self) -> SimDevice:
        """The model side's device: the twin the run was opened with (reopen keeps it)."""
        _ = self.run
        assert self.twin is not None
        return self.twin

    def active_indexes(self) -> set[int]:
        """The indexes the model side has enabled (or, for ERR/REQ, a trigger on)."""
        twin = self._twin()
        state = twin.model.state
        active = {state.irq_type} if state.irq_type < IrqIndex.ERR else set()
        active |= {IrqIndex.ERR} if state.err_trigger is not None else set()
        active |= {IrqIndex.REQ} if state.req_trigger is not None else set()
        return active

    def sweepable(self) -> set[int]:
        """Active indexes a loopback may touch (INTx with no trigger oopses before 2024)."""
        twin = self._twin()
        intx = twin.model.state.intx
        active = self.active_indexes()
        if not twin.profile.persistent_intx and (intx is None or intx.trigger is None):
            active.discard(IrqIndex.INTX)
        return active

    def probe_indexes(self) -> set[int]:
        """Indexes a probe or the closing sweep may loop back: every index the
        device has, except INTx where a loopback could oops (``sweepable``)."""
        indexes = {i for i, n in self.counts.items() if n}
        if IrqIndex.INTX not in self.sweepable():
            intx = self._twin().model.state.intx
            if intx is not None:  # enabled without a trigger: unsafe before 2024
                indexes.discard(IrqIndex.INTX)
        return indexes

    def sweep(self, index: int) -> SetIrqs:
        """TRIGGER|NONE over the whole of an enabled index: shows every trigger.

        On kernels before 6.5 the MSI/MSI-X range is the enabled ``num_ctx``.
        """
        twin = self._twin()
        state = twin.model.state
        count = self.counts.get(index, 1)
        if index in (IrqIndex.MSI, IrqIndex.MSIX) and not twin.profile.dyn_ctx and state.num_ctx:
            count = state.num_ctx
        return SetIrqs(_NONE_TRIGGER, index, 0, count)

    def would_loop(self, step: Step) -> bool:
        """Would ``step`` make one eventfd both the INTx trigger and its unmask eventfd?

        With the line still asserted that never settles: the re-fire signals
        the trigger, which is the unmask eventfd, which unmasks and re-fires
        again (in the kernel too, through the virqfd and its workqueue, as far
        as the code reads).  Counts then depend on timing, so the machine
        leaves that configuration out.
        """
        if not isinstance(step, SetIrqs) or step.index != IrqIndex.INTX or not step.fds:
            return False
        action_data = step.flags & 0x3F
        if action_data not in (_TRIGGER_EVENTFD, _UNMASK_EVENTFD):
            return False
        twin = self._twin()
        intx = twin.model.state.intx
        if intx is None:
            return False
        other = intx.unmask if action_data == _TRIGGER_EVENTFD else intx.trigger
        fd = self.run.model.resolve(step.fds[0])
        return other is not None and getattr(other, "user_fd", None) == fd

    def would_oops_later(self, step: Step) -> bool:
        """Would ``step`` make the unmask eventfd's handler re-fire INTx with no
        trigger on a kernel before the 2024 fix?  That oopses in the virqfd's
        workqueue (in a SimDevice, its thread), after the step returned, so
        the model cannot refuse it in the step itself: the machine leaves it out.
        """
        if not isinstance(step, WriteEventfd | PendEventfd):
            return False
        twin = self._twin()
        intx = twin.model.state.intx
        if twin.profile.persistent_intx or intx is None or intx.trigger is not None:
            return False
        unmask = intx.unmask
        fd = self.run.model.resolve(f"e{step.slot}")
        return unmask is not None and getattr(unmask, "user_fd", None) == fd

    def undecided(self, step: Step) -> bool:
        """Would ``step`` send an MSI to a vector with no trigger?

        An open finding (docs/model.md): the kernel sometimes holds such an
        MSI and signals the next trigger set on the vector, sometimes drops
        it, and what decides it is not found yet; the model drops it.  Until
        it is, the machine leaves that configuration out, as ``would_loop``
        does, rather than let its draws decide whether CI sees it.
        """
        raises = isinstance(step, Raise) or (
            isinstance(step, BarWrite) and step.offset == EDU_IRQ_RAISE
        )
        if not raises:
            return False
        state = self._twin().model.state
        return state.irq_type == IrqIndex.MSI and state.vectors.get(0) is None

    def begin_example(self) -> None:
        """Start an example from a clean device (a reopened one when simulated)."""
        run = self.run
        run.discard()  # an example that ended by an exception left steps unplayed
        self.stats.examples += 1
        if self.progress is not None and time.monotonic() - self._reported >= PROGRESS_S:
            self._reported = time.monotonic()
            self.progress(self.stats)
        for each in (run, *run.peers):
            if each.kernel.device.quiesce():  # simulated: start from a fresh open
                each.kernel.play(Reopen())
                each.model.play(Reopen())
        # Every example starts with PCI_COMMAND as an open shows it (bus mastering off).
        with paused():  # cleaning is not a step of the example
            run.clean(cleanup_steps(self.counts), self._twin().function.command_at_open)
        run.steps = 0  # Disagreement numbers steps within the example

    def failed(self, trace: list[Played], bad: Disagreement) -> str:
        """Count a failure; on hypothesis' final (shrunk) run, write the files."""
        stats = self.stats
        stats.failures += 1
        if stats.first_failure is None:
            stats.first_failure = (stats.examples, stats.seconds, stats.steps)
        stats.last_failure = list(trace)
        if not is_final_run():
            return ""
        stats.final_failure = list(trace)
        if not self.export or not self.export_now:
            return ""
        assert self.facts is not None
        out = self.out_dir or default_out_dir()
        try:
            paths = write_counterexample(trace, self.facts, out, str(bad))
        except OSError as exc:
            # The divergence is the finding: a full disk or a bad directory
            # must not replace it with an OSError.
            return f"\ncould not write the counterexample to {out}: {exc}"
        stats.counterexamples.extend(paths)
        return "\ncounterexample written to " + " and ".join(str(p) for p in paths)

    def close(self) -> None:
        """Leave the device as it was found (nothing enabled, no interrupt
        status raised), then close it and its twin."""
        if self._run is not None:
            run, self._run = self._run, None
            with paused():
                run.clean(cleanup_steps(self.counts))
            run.close()


def is_final_run() -> bool:
    try:
        return bool(current_build_context().is_final)
    except InvalidArgument:  # driven by hand, outside @given: every run is final
        return True
