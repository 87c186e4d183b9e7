"""The active recorder: the model's one hook (``_model.core.OBSERVER``) counts cells.

``with recording() as rec:`` counts every SET_IRQS and GET_IRQ_INFO that any
model answers in the block, per device (its ``PciFunction`` and kernel).  A
model that only stands in for the device under test (the kernel side of a
simulated lockstep run, whose twin counts the same step) is left out with
``not_counted(device)``; ``paused()`` leaves out set-up and clean-up calls
(the twin builder's GET_IRQ_INFO, the cleaning between examples).
"""

from __future__ import annotations

import contextlib
import dataclasses
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from vfio_hil._coverage.cells import Cell, classify, info_cell, outcome_of
from vfio_hil._irq import IrqInfo
from vfio_hil._model import PciFunction, VfioPciModel
from vfio_hil._model.core import OBSERVER

__all__ = [
    "DeviceKey",
    "Recorder",
    "active",
    "count_model_side",
    "not_counted",
    "paused",
    "recording",
]

_UNCOUNTED: weakref.WeakSet[VfioPciModel] = weakref.WeakSet()
# (function, kernel) -> (name, stimulus): how a twin's cells are reported, set
# when its run is built (the recorder may start later, as pytest's does).
_LABELS: dict[tuple[PciFunction, str], tuple[str, bool]] = {}


@dataclass(frozen=True, order=True)
class DeviceKey:
    """Which device a cell was reached on: what decides its reachable cells."""

    name: str
    kernel: str
    function: PciFunction = dataclasses.field(compare=False)
    stimulus: bool = dataclasses.field(default=False, compare=False)  # can drive its INTx line

    def __str__(self) -> str:
        return f"{self.name}@{self.kernel}"


class Recorder:
    """Counts cells per device; ``events``: also hypothesis ``event()`` per cell."""

    def __init__(self, events: bool = False) -> None:
        self.counts: dict[DeviceKey, Counter[Cell]] = {}
        self.events = events
        self._names: dict[tuple[PciFunction, str], DeviceKey] = {}

    def _key(self, model: VfioPciModel) -> DeviceKey:
        pair = (model.function, model.profile.name)
        key = self._names.get(pair)
        if key is None:
            fn = model.function
            # Unlabelled (a SimDevice used alone): named by its hardware; its
            # line may be driven, so the +line cells count as reachable.
            unnamed = f"device(intx={int(fn.intx_pin)},msi={fn.msi_vectors},msix={fn.msix_vectors})"
            name, stimulus = _LABELS.get(pair, (unnamed, True))
            key = self._names[pair] = DeviceKey(name, pair[1], model.function, stimulus)
        return key

    def add(self, model: VfioPciModel, cell: Cell) -> None:
        self.counts.setdefault(self._key(model), Counter())[cell] += 1
        if self.events:
            from hypothesis import event
            from hypothesis.control import currently_in_test_context

            if currently_in_test_context():
                event(f"cell {cell}")

    # --- the model's Observer ---------------------------------------------------------

    def set_irqs(self, model: VfioPciModel, buf: bytes, answer: Callable[[bytes], int]) -> int:
        if model in _UNCOUNTED:
            return answer(buf)
        before = classify(model, buf)
        ret = answer(buf)
        if before is not None:
            self.add(model, dataclasses.replace(before, outcome=outcome_of(ret)))
        return ret

    def irq_info(self, model: VfioPciModel, index: int, answer: IrqInfo | int) -> None:
        if model not in _UNCOUNTED:
            self.add(model, info_cell(index, outcome_of(answer if isinstance(answer, int) else 0)))


@contextlib.contextmanager
def recording(recorder: Recorder | None = None) -> Iterator[Recorder]:
    """Make ``recorder`` (a new one by default) the active one for the block."""
    rec = recorder or Recorder()
    token = OBSERVER.set(rec)
    try:
        yield rec
    finally:
        OBSERVER.reset(token)


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No recording in the block (set-up and clean-up calls)."""
    token = OBSERVER.set(None)
    try:
        yield
    finally:
        OBSERVER.reset(token)


def not_counted(device: object) -> None:
    """Leave ``device``'s model out of every recording (its twin counts its steps)."""
    model = getattr(device, "model", None)
    if isinstance(model, VfioPciModel):
        _UNCOUNTED.add(model)


def active() -> Recorder | None:
    observer = OBSERVER.get()
    return observer if isinstance(observer, Recorder) else None


def count_model_side(
    kernel: object, twin: object, peers: Iterable[tuple[object, object]] = ()
) -> None:
    """A lockstep run counts each step once, on its model side: the kernel side's
    model (a simulated kernel) and every peer (kernel-vs-kernel) are left out,
    and the twin's cells are reported under the kernel side's name."""
    not_counted(kernel)
    for peer, peer_twin in peers:
        not_counted(peer)
        not_counted(peer_twin)
    model = getattr(twin, "model", None)
    if isinstance(model, VfioPciModel):
        stimulus = getattr(twin, "stimulus", None) is not None
        name = str(getattr(kernel, "name", "device"))
        _LABELS[(model.function, model.profile.name)] = (name, stimulus)
