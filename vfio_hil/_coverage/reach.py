"""Which cells a device can produce: found by exploring the model itself.

From a fresh open, every state the model reaches with a fixed vocabulary of
requests and device events (``_events``) is explored, breadth first, and
every probe request of the vocabulary is answered in each.  Each answer
names the model function whose ``return`` decided it, and that function's
comment names the kernel rule (``# vfio_set_irqs_validate_and_prepare(): V2,
the range must fit the index``); so an outcome that never occurs for a
request in a state is listed with the rule that answers it instead.
"""

from __future__ import annotations

import dataclasses
import functools
import linecache
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from vfio_hil import _uapi as u
from vfio_hil._coverage.cells import (
    ACTIONS,
    DATA_TYPES,
    INDEXES,
    RANGES,
    Cell,
    classify,
    info_cell,
    outcome_of,
)
from vfio_hil._model import (
    CountingEventfds,
    IntxCtx,
    IrqState,
    KernelProfile,
    PciFunction,
    VfioPciModel,
)
from vfio_hil._model.eventfds import Counter
from vfio_hil._model.validate import set_irqs_validate_and_prepare

__all__ = ["STRUCTURAL", "Reach", "explore"]

_MODEL_DIR = str(Path(VfioPciModel.__module__.replace(".", "/")).parent)
_U32_MAX = 0xFFFFFFFF
_HEADER = struct.Struct("<5I")
_MAX_STATES = 400  # a bound on the walk (the presets need far fewer)
_MAX_DEPTH = 3  # every preset's cells are found by depth 3 (4 and 5 add none)
_OUTCOMES = ("ok", ">0", "EINVAL", "ENOTTY", "EBADF", "EBUSY", "ENOSPC", "ERANGE")

# Why a (state, request) context cannot occur at all, whatever the kernel does:
# the state names a thing the index or the data type does not have.
STRUCTURAL = {
    "masked": "only INTx has a mask (vfio_pci_intx_mask(); MSI/MSI-X masking is not exported)",
    "other": "ERR and REQ triggers are independent of the enabled index "
    "(vfio_pci_set_err_trigger(), vfio_pci_set_req_trigger())",
    "+line": "only INTx has a line",
    "+pending": "only an EVENTFD request names an eventfd",
    "-": "vfio_set_irqs_validate_and_prepare() refuses with EINVAL and "
    "vfio_pci_set_irqs_ioctl() with ENOTTY (no handler): nothing else happens stateless",
    "no -": "vfio_set_irqs_validate_and_prepare(): V1 refuses an index past "
    "VFIO_PCI_NUM_IRQS before any state is read",
    "refused": "vfio_set_irqs_validate_and_prepare(): V1/V2 refuses a range past the end "
    "or one that wraps before any state is read",
    "bad data": "vfio_set_irqs_validate_and_prepare(): V3 refuses anything but one data "
    "type before any state is read",
    "absent": "the device lacks the index: vfio_pci_get_irq_count() is 0, so every range "
    "is past the end (vfio_set_irqs_validate_and_prepare(): V2)",
    "no stimulus": "the device cannot drive its INTx line (no stimulus)",
    "any action": "a request vfio_set_irqs_validate_and_prepare() refuses is one cell "
    "(action *, state -): it reads neither the action nor any state",
    "any range": "a request no handler takes is one cell (range *, state -, ENOTTY): "
    "vfio_pci_set_irqs_ioctl() reads neither its range nor any state",
    "bad index": "vfio_pci_get_irq_count() is 0 past VFIO_PCI_NUM_IRQS: every range is past",
    "one vector": "the index has one vector: a range in it ends at its end",
    "no handler": "vfio_pci_set_irqs_ioctl() has no handler for this index and action "
    "(MSI/MSI-X masking is not exported; ERR/REQ are TRIGGER only): ENOTTY before any state",
}


@dataclass
class Reach:
    """What the model can answer on one device, and why the rest cannot happen."""

    cells: set[Cell] = field(default_factory=set)
    # (cell without outcome) -> {outcome: the kernel rule that answered it}
    rules: dict[Cell, dict[str, str]] = field(default_factory=dict)
    states: int = 0

    def contexts(self) -> set[Cell]:
        return set(self.rules)

    def why_not(self, cell: Cell, counts: dict[str, int], stimulus: bool) -> str | None:
        """Why ``cell`` is unreachable on this device (None: it is reachable)."""
        if cell in self.cells:
            return None
        context = _context(cell)
        answered = self.rules.get(context)
        if answered:
            shown = "; ".join(f"{o} by {why}" for o, why in sorted(answered.items()))
            return f"this request in this state is answered only {shown}"
        if cell.action == "INFO":
            other = "EINVAL" if cell.outcome == "ok" else "ok"
            return f"vfio_pci_ioctl_get_irq_info() answers this index {other} on this device"
        return structural_reason(cell, counts, stimulus) or "never produced by the model"


def _context(cell: Cell) -> Cell:
    return Cell(cell.index, cell.action, cell.data, cell.range, cell.state, "?")


def structural_reason(cell: Cell, counts: dict[str, int], stimulus: bool) -> str | None:
    """The reason a cell's context cannot occur, if it is one of ``STRUCTURAL``'s."""
    if cell.action == "INFO":
        return None
    if (cell.action == "*") != (cell.state == "-" and cell.range != "*"):
        return STRUCTURAL["any action"]
    if cell.range == "*":
        ok = cell.state == "-" and cell.outcome in ("ENOTTY", "?")
        return None if ok else STRUCTURAL["any range"]
    base = cell.state.split("+")[0]
    n = counts.get(cell.index, 0)
    if cell.range not in ("past", "overflow"):
        if cell.index == "BAD":
            return STRUCTURAL["bad index"]
        if not n:
            return STRUCTURAL["absent"]
        if cell.range == "in" and n < 2:
            return STRUCTURAL["one vector"]
    if base == "-":
        return None if cell.outcome in ("EINVAL", "?") else STRUCTURAL["-"]
    if cell.index == "BAD":
        return STRUCTURAL["no -"]
    if cell.range in ("past", "overflow"):
        return STRUCTURAL["refused"]
    if cell.data == "BAD":
        return STRUCTURAL["bad data"]
    if cell.action == "BAD" or (cell.index != "INTX" and cell.action != "TRIGGER"):
        return STRUCTURAL["no handler"]
    if base == "masked" and cell.index != "INTX":
        return STRUCTURAL["masked"]
    if base == "other" and cell.index in ("ERR", "REQ"):
        return STRUCTURAL["other"]
    if "+line" in cell.state and cell.index != "INTX":
        return STRUCTURAL["+line"]
    if "+line" in cell.state and not stimulus:
        return STRUCTURAL["no stimulus"]
    if "+pending" in cell.state and cell.data != "EVENTFD":
        return STRUCTURAL["+pending"]
    return None


def matrix(counts: dict[str, int], stimulus: bool) -> Iterator[Cell]:
    """Every cell of the matrix whose context can occur on the device."""
    from vfio_hil._coverage.cells import STATES

    for index in INDEXES:
        for outcome in ("ok", "EINVAL"):
            yield Cell(index, "INFO", "-", "-", "-", outcome)
        for action in ACTIONS:
            for data in DATA_TYPES:
                for range_ in RANGES:
                    for state in STATES:
                        context = Cell(index, action, data, range_, state, "?")
                        if structural_reason(context, counts, stimulus) is None:
                            for outcome in _OUTCOMES:
                                yield Cell(index, action, data, range_, state, outcome)


# --- the walk --------------------------------------------------------------------------


class _Fds:
    """The vocabulary's file descriptors in a CountingEventfds table."""

    def __init__(self, table: CountingEventfds) -> None:
        self.a = table.open()
        self.b = table.open()
        self.pending = table.open()
        self.notfd = table.not_eventfd()
        self.closed = 9999


def _ranges(n: int) -> list[tuple[int, int]]:
    pairs = {(0, 0), (0, 1), (0, n), (n, 0), (n, 1), (0, n + 1), (1, 0)}
    pairs |= {(1, n - 1), (n - 1, 1), (0, n - 1)} if n > 1 else set()
    pairs |= {(0, _U32_MAX), (1, _U32_MAX - 1), (_U32_MAX, 0)}
    return sorted(pairs)


def _payloads(dtype: int, count: int, fds: _Fds) -> list[bytes]:
    if dtype == u.VFIO_IRQ_SET_DATA_BOOL:
        return [b"\1" * count, b"\0" * count] if count <= 4096 else [b""]
    if dtype != u.VFIO_IRQ_SET_DATA_EVENTFD or count > 4096:
        return [b""]
    rest = [-1] * max(count - 1, 0)
    firsts = (fds.a, fds.b, fds.pending, -1, -2, fds.closed, fds.notfd)
    arrays = [[first, *rest] for first in firsts]
    arrays.append([fds.a] * count)
    if count > 1:
        arrays += [[fds.a, fds.closed, *rest[1:]], [fds.a, fds.notfd, *rest[1:]]]
    return [struct.pack(f"<{len(a)}i", *a) for a in arrays]


def _probes(model: VfioPciModel, fds: _Fds) -> Iterator[bytes]:
    flag_sets = [a | d for a in (8, 16, 32) for d in (1, 2, 4)]
    # a stray bit, no data type, two data types; no action or two, with each data type
    flag_sets += [0x21 | 0x40, 0x20, 0x23, 0x0, 0x19, 0x1A, 0x1C, 0x2, 0x4]
    flag_sets += [0x8, 0x10, 0xB, 0x13]  # MASK, UNMASK with no data type or two
    for index in range(u.VFIO_PCI_NUM_IRQS + 1):
        n = model.get_irq_count(index)
        for start, count in _ranges(n):
            for flags in flag_sets:
                for data in _payloads(flags & 7, count, fds):
                    argsz = _HEADER.size + len(data)
                    yield _HEADER.pack(argsz, flags, index, start, count) + data
                if flags & 6 and 0 < count <= 4096:  # argsz short of the payload (V4)
                    yield _HEADER.pack(_HEADER.size, flags, index, start, count)
                yield _HEADER.pack(_HEADER.size - 1, flags, index, start, count)  # V1


def _events(model: VfioPciModel, stimulus: bool) -> Iterator[tuple[str, Any]]:
    """Device-side transitions: the line, INTx-disable, reset, reopen."""
    if stimulus and model.function.intx_pin:
        yield "line up", lambda m: m.set_intx_level(True)
        yield "line down", lambda m: m.set_intx_level(False)
    if model.function.intx_pin:
        yield "DisINTx", lambda m: m.write_intx_disable(True)
        yield "DisINTx off", lambda m: m.write_intx_disable(False)
    yield "reopen", _reopen


def _reopen(model: VfioPciModel) -> None:
    model.close_device()
    model.state = IrqState()
    model.open_device()


def _signature(model: VfioPciModel) -> tuple[object, ...]:
    """What decides the answers: the state, with an eventfd only set or not
    (and whether INTx's trigger is its unmask eventfd), vectors by how many."""
    state, lines = model.state, model.lines
    intx = state.intx
    intx_sig = None
    if intx is not None:
        same = intx.trigger is not None and intx.trigger is intx.unmask
        intx_sig = (intx.trigger is None, intx.masked, intx.unmask is None, same)
    n = model.get_irq_count(state.irq_type)

    def size(k: int) -> str:  # none, one, some, all: which vectors is not what decides
        return "0" if not k else "n" if k == n else "1" if k == 1 else "k"

    return (
        state.irq_type,
        intx_sig,
        state.virq_disabled,
        size(state.num_ctx),
        size(len(state.allocated)),
        size(len(state.vectors)),
        0 in state.vectors,
        state.err_trigger is None,
        state.req_trigger is None,
        lines.intx_asserted,
        lines.dis_intx,
        lines.intx_unseen,
    )


def _counters(model: VfioPciModel, fds: _Fds) -> list[tuple[str, Any]]:
    table = model.eventfds
    assert isinstance(table, CountingEventfds)
    return [(k, table.counters[getattr(fds, k)]) for k in ("a", "b", "pending")]


def _prime(model: VfioPciModel, fds: _Fds) -> None:
    """Before every probe: a, b empty; pending holds a count."""
    for label, counter in _counters(model, fds):
        counter.value = 1 if label == "pending" else 0


class _Origin:
    """The innermost model function that returned the answer, and its rule."""

    def __init__(self) -> None:
        self.returns: list[tuple[FrameType, object]] = []

    def __call__(self, frame: FrameType, event: str, arg: object) -> None:
        if event == "return" and frame.f_code.co_filename.find(_MODEL_DIR) >= 0:
            self.returns.append((frame, arg))

    def rule(self, ret: int) -> str:
        for frame, value in self.returns:
            if value == ret and isinstance(value, int) and not isinstance(value, bool):
                return _rule_at(frame.f_code.co_filename, frame.f_lineno, frame.f_code)
            if isinstance(value, tuple) and value and value[0] == ret:  # (ret, trigger)
                return _rule_at(frame.f_code.co_filename, frame.f_lineno, frame.f_code)
        return "?"


@functools.cache
def _rule_at(filename: str, lineno: int, code: Any) -> str:
    """The nearest comment above ``lineno`` inside the function, else the one
    above its ``def`` (the model names the kernel function there)."""
    first = code.co_firstlineno
    for line_no in range(lineno, first - 1, -1):
        text = linecache.getline(filename, line_no).strip()
        if text.startswith("#"):
            return text.lstrip("# ").rstrip()
        if "#" in text and line_no == lineno:
            return text.split("#", 1)[1].strip()
    for line_no in range(first - 1, max(first - 4, 0), -1):
        text = linecache.getline(filename, line_no).strip()
        if text.startswith("#"):
            return text.lstrip("# ").rstrip()
    return f"{code.co_name}()"


def _copy(model: VfioPciModel) -> VfioPciModel:
    """The model with its own state, lines and eventfd counters (deepcopy is
    ten times slower, and the walk copies for every request that passes V1-V4)."""
    table = model.eventfds
    assert isinstance(table, CountingEventfds)
    new_table = CountingEventfds(others=set(table.others), next_fd=table.next_fd)
    twins: dict[int, Any] = {}
    for fd, counter in table.counters.items():
        twins[id(counter)] = new_table.counters[fd] = Counter(
            counter.label, counter.value, counter.refs
        )

    def ref(old: Any) -> Any:
        return None if old is None else twins.get(id(old), old)

    state = model.state
    intx = state.intx
    new = object.__new__(type(model))
    new.__dict__.update(model.__dict__)
    new.eventfds = new_table
    new.state = IrqState(
        state.irq_type,
        None if intx is None else IntxCtx(ref(intx.trigger), intx.masked, ref(intx.unmask)),
        state.virq_disabled,
        state.num_ctx,
        set(state.allocated),
        {k: ref(v) for k, v in state.vectors.items()},
        ref(state.err_trigger),
        ref(state.req_trigger),
    )
    new.lines = dataclasses.replace(model.lines)
    return new


def _rule(model: VfioPciModel, buf: bytes) -> str:
    """The rule that answers ``buf`` (the call is traced: done once per answer)."""
    origin = _Origin()
    previous = sys.getprofile()
    sys.setprofile(origin)
    try:
        ret = model.ioctl_set_irqs(buf)
    finally:
        sys.setprofile(previous if callable(previous) else None)
    return origin.rule(ret)


@functools.lru_cache(maxsize=32)
def explore(function: PciFunction, profile: KernelProfile, stimulus: bool) -> Reach:
    """Walk the model of ``function`` on ``profile`` (cached: the model is deterministic)."""
    from vfio_hil._coverage.recorder import paused
    from vfio_hil._model import KernelOops

    reach = Reach()
    table = CountingEventfds()
    start = VfioPciModel(function, profile, table)
    fds = _Fds(table)
    start.open_device()
    seen = {_signature(start)}
    frontier = [(start, 0)]
    with paused():
        while frontier and len(seen) < _MAX_STATES:
            model, depth = frontier.pop(0)
            for index in range(u.VFIO_PCI_NUM_IRQS + 1):
                answer = model.get_irq_info(index)
                reach.cells.add(
                    info_cell(index, outcome_of(answer if isinstance(answer, int) else 0))
                )
            successors: list[VfioPciModel] = []
            for buf in _probes(model, fds):
                _prime(model, fds)
                context = classify(model, buf)
                assert context is not None
                argsz, flags, index, first, count = _HEADER.unpack_from(buf)
                num_irqs = model.get_irq_count(index)
                size = set_irqs_validate_and_prepare(
                    argsz, flags, index, first, count, num_irqs, u.VFIO_PCI_NUM_IRQS
                )
                trial = model if size < 0 else _copy(model)  # a refusal changes nothing
                try:
                    ret = trial.ioctl_set_irqs(buf)
                except KernelOops:
                    continue  # the kernel would crash: a fuzzer never sends it
                outcome = outcome_of(ret)
                reach.cells.add(dataclasses.replace(context, outcome=outcome))
                answered = reach.rules.setdefault(context, {})
                if outcome not in answered:
                    again = model if size < 0 else _copy(model)
                    _prime(again, fds)
                    answered[outcome] = _rule(again, buf)
                if trial is not model:
                    successors.append(trial)
            for _name, event in _events(model, stimulus):
                trial = _copy(model)
                try:
                    event(trial)
                except KernelOops:
                    continue
                successors.append(trial)
            for nxt in successors:
                sig = _signature(nxt)
                if sig not in seen and len(seen) < _MAX_STATES and depth < _MAX_DEPTH:
                    seen.add(sig)
                    frontier.append((nxt, depth + 1))
    reach.states = len(seen)
    return reach
