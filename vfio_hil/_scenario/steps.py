"""Step kinds: each YAML step becomes one ``vfio_hil._lockstep.steps`` step.

``enable``, ``disable``, ``trigger``, ``trigger_bool``, ``mask``, ``unmask``,
``unmask_eventfd`` and ``raw`` are SET_IRQS requests (``SetIrqs``);
``raise``, ``clear``, ``reset``, ``reopen``, ``write_eventfd``,
``intx_disable``, ``command`` (a PCI_COMMAND write), ``bar_write`` (a raw
BAR0 write) and ``irq_info`` (GET_IRQ_INFO) are the other ops.
docs/scenarios.md is the reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vfio_hil import _uapi as u
from vfio_hil._irq import FLAG_NAMES, IrqIndex
from vfio_hil._lockstep.steps import (
    BarWrite,
    Clear,
    FdRef,
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
from vfio_hil._scenario.expect import ByKernel, Expect, parse_expect, slot_number
from vfio_hil._scenario.nodes import Node, SchemaError, check_keys, did_you_mean

__all__ = ["FLAG_NAMES", "KINDS", "ScenarioStep", "parse_step"]

_NONE = u.VFIO_IRQ_SET_DATA_NONE
_BOOL = u.VFIO_IRQ_SET_DATA_BOOL
_EVENTFD = u.VFIO_IRQ_SET_DATA_EVENTFD
_MASK = u.VFIO_IRQ_SET_ACTION_MASK
_UNMASK = u.VFIO_IRQ_SET_ACTION_UNMASK
_TRIGGER = u.VFIO_IRQ_SET_ACTION_TRIGGER
_INDEX_NAMES = [i.name for i in IrqIndex]
_S32 = (-(1 << 31), (1 << 31) - 1)


@dataclass(frozen=True)
class ScenarioStep:
    """One step: where it is, its YAML text, the op it plays, what it expects."""

    number: int
    line: int
    kind: str
    source: str
    op: Step
    expect: Expect | ByKernel


class _Args:
    """A step's argument mapping, read field by field."""

    def __init__(self, node: Node, kind: str, allowed: tuple[str, ...], required: tuple[str, ...]):
        self.kind = kind
        self.node = node
        self.entries = check_keys(node, kind, allowed, required)

    def has(self, key: str) -> bool:
        return key in self.entries

    def index(self, allow_number: bool = False) -> int:
        node = self.entries["index"]
        if allow_number and isinstance(node.value, int) and not isinstance(node.value, bool):
            return node.integer("index")
        name = node.value
        if not isinstance(name, str) or name not in _INDEX_NAMES:
            shown = repr(name) if isinstance(name, str) else str(name)
            hint = did_you_mean(name, _INDEX_NAMES) if isinstance(name, str) else ""
            numbers = " (or a number)" if allow_number else " (numbers only in raw)"
            raise node.fail(
                f"bad index {shown}{hint}: use one of {', '.join(_INDEX_NAMES)}{numbers}"
            )
        return int(IrqIndex[name])

    def u32(self, key: str, default: int) -> int:
        return self.entries[key].integer(key) if key in self.entries else default

    def byte_list(self, key: str) -> bytes:
        items = self.entries[key].sequence(key)
        return bytes(item.integer(f"an item of {key}", 0, 0xFF) for item in items)

    def fd_list(self, key: str, slots: int) -> tuple[FdRef, ...]:
        return tuple(fd_ref(item, slots) for item in self.entries[key].sequence(key))


def fd_ref(node: Node, slots: int) -> FdRef:
    """An EVENTFD payload entry: ``eN``, ``closed``, ``notfd`` or an s32."""
    if isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.integer("an fd number", *_S32)
    if node.value in ("closed", "notfd"):
        return str(node.value)
    if isinstance(node.value, str) and node.value.startswith("e"):
        return f"e{slot_number(node, slots, 'an fd')}"
    raise node.fail(
        f"bad fd {node.value!r}: use a slot (e0..), closed, notfd or a number such as -1"
    )


def _flags(node: Node) -> int:
    if isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.integer("flags")
    text = node.string("flags")
    value = 0
    for part in text.split("|"):
        name = part.strip().removeprefix("DATA_").removeprefix("ACTION_")
        if name not in FLAG_NAMES:
            hint = did_you_mean(name, FLAG_NAMES)
            raise node.fail(
                f"unknown flag {part.strip()!r}{hint}: use a number or names joined with | "
                f"from {', '.join(FLAG_NAMES)}"
            )
        value |= FLAG_NAMES[name]
    return value


def _enable(a: _Args, slots: int) -> Step:
    fds = a.fd_list("fds", slots)
    return SetIrqs(_TRIGGER | _EVENTFD, a.index(), a.u32("start", 0), len(fds), fds=fds)


def _disable(a: _Args, slots: int) -> Step:
    return SetIrqs(_TRIGGER | _NONE, a.index(), 0, 0)


def _trigger(a: _Args, slots: int) -> Step:
    return SetIrqs(_TRIGGER | _NONE, a.index(), a.u32("start", 0), a.u32("count", 1))


def _trigger_bool(a: _Args, slots: int) -> Step:
    data = a.byte_list("data")
    return SetIrqs(_TRIGGER | _BOOL, a.index(), a.u32("start", 0), len(data), bools=data)


def _masking(action: int) -> Callable[[_Args, int], Step]:
    def build(a: _Args, slots: int) -> Step:
        if a.has("data") and a.has("count"):
            raise a.node.fail(f"{a.kind} takes count (DATA_NONE) or data (DATA_BOOL), not both")
        index, start = a.index(), a.u32("start", 0)
        if a.has("data"):
            data = a.byte_list("data")
            return SetIrqs(action | _BOOL, index, start, len(data), bools=data)
        return SetIrqs(action | _NONE, index, start, a.u32("count", 1))

    return build


def _unmask_eventfd(a: _Args, slots: int) -> Step:
    fd = fd_ref(a.entries["fd"], slots)
    return SetIrqs(_UNMASK | _EVENTFD, a.index(), 0, 1, fds=(fd,))


def _raw(a: _Args, slots: int) -> Step:
    if a.has("data") and a.has("fds"):
        raise a.node.fail("raw takes data (bytes) or fds (s32 words), not both")
    return SetIrqs(
        _flags(a.entries["flags"]),
        a.index(allow_number=True),
        a.u32("start", 0),
        a.u32("count", 0),
        fds=a.fd_list("fds", slots) if a.has("fds") else None,
        bools=a.byte_list("data") if a.has("data") else None,
        argsz=a.u32("argsz", 0) if a.has("argsz") else None,
    )


def _irq_info(a: _Args, slots: int) -> Step:
    return GetIrqInfo(a.index(allow_number=True))


def _bar_write(a: _Args, slots: int) -> Step:
    offset = a.u32("offset", 0)
    if offset % 4:
        raise a.node.fail(f"bar_write offset {offset:#x} must be a multiple of 4 (a 32-bit write)")
    return BarWrite(offset, a.u32("value", 0))


_Builder = Callable[[_Args, int], Step]
# kind -> (allowed keys, required keys, builder)
_MAPPING_KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...], _Builder]] = {
    "enable": (("index", "fds", "start"), ("index", "fds"), _enable),
    "disable": (("index",), ("index",), _disable),
    "trigger": (("index", "start", "count"), ("index",), _trigger),
    "trigger_bool": (("index", "start", "data"), ("index", "data"), _trigger_bool),
    "mask": (("index", "start", "count", "data"), ("index",), _masking(_MASK)),
    "unmask": (("index", "start", "count", "data"), ("index",), _masking(_UNMASK)),
    "unmask_eventfd": (("index", "fd"), ("index", "fd"), _unmask_eventfd),
    "irq_info": (("index",), ("index",), _irq_info),
    "bar_write": (("offset", "value"), ("offset", "value"), _bar_write),
    "raw": (
        ("flags", "index", "start", "count", "data", "fds", "argsz"),
        ("flags", "index", "count"),
        _raw,
    ),
}
_BARE_KINDS: dict[str, type[Reset] | type[Reopen]] = {"reset": Reset, "reopen": Reopen}
KINDS = (
    *_MAPPING_KINDS,
    "raise",
    "clear",
    *_BARE_KINDS,
    "write_eventfd",
    "pend_eventfd",
    "intx_disable",
    "command",
)


def _scalar_step(kind: str, node: Node, slots: int) -> Step:
    if kind in _BARE_KINDS:
        if node.value is not None:
            raise node.fail(f"{kind} takes no argument: write '- {kind}' or '{kind}:'")
        return _BARE_KINDS[kind]()
    if kind == "raise":
        return Raise(1 if node.value is None else node.integer("raise"))
    if kind == "clear":
        return Clear(0xFFFFFFFF if node.value is None else node.integer("clear"))
    if kind == "write_eventfd":
        return WriteEventfd(slot_number(node, slots, "write_eventfd"))
    if kind == "pend_eventfd":
        return PendEventfd(slot_number(node, slots, "pend_eventfd"))
    if kind == "command":
        return SetCommand(node.integer("command", 0, 0xFFFF))
    return SetDisIntx(node.boolean("intx_disable"))


def _build(kind: str, node: Node, slots: int) -> Step:
    if kind in _MAPPING_KINDS:
        allowed, required, builder = _MAPPING_KINDS[kind]
        return builder(_Args(node, kind, allowed, required), slots)
    return _scalar_step(kind, node, slots)


def parse_step(node: Node, number: int, slots: int, source: str) -> ScenarioStep:
    """Step ``number`` (1-based) of a scenario with ``slots`` eventfds."""
    if isinstance(node.value, str):
        kind = node.value
        if kind in KINDS and kind not in _BARE_KINDS:
            raise node.fail(f"step {number}: {kind} needs an argument ('{kind}: ...')")
        if kind not in KINDS:
            hint = did_you_mean(kind, KINDS)
            raise node.fail(f"step {number}: unknown step kind {kind!r}{hint}")
        bare: Step = _BARE_KINDS[kind]()
        return ScenarioStep(number, node.line, kind, source, bare, Expect(0, (), node.line))
    entries = node.mapping(f"step {number}")
    for key in entries:
        if key not in KINDS and key != "expect":
            hint = did_you_mean(key, (*KINDS, "expect"))
            raise SchemaError(
                node.key_lines[key],
                f"step {number}: unknown step kind or key {key!r}{hint}; "
                f"a step is one of {', '.join(KINDS)}, with an optional expect",
            )
    kinds = [key for key in entries if key != "expect"]
    if len(kinds) != 1:
        what = "no step kind" if not kinds else f"{len(kinds)} step kinds ({', '.join(kinds)})"
        raise node.fail(f"step {number} has {what}: give exactly one of {', '.join(KINDS)}")
    kind = kinds[0]
    try:
        op = _build(kind, entries[kind], slots)
        expect = parse_expect(entries.get("expect"), slots, node.line)
    except SchemaError as err:
        raise SchemaError(err.line, f"step {number} ({kind}): {err.message}") from None
    return ScenarioStep(number, node.line, kind, source, op, expect)
