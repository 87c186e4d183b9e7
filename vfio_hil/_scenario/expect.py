"""What a step expects: a return value or an errno, and each eventfd's count.

Forms (see docs/scenarios.md): absent or ``quiet`` (return 0, nothing
signalled), an integer (that return value), ``{errno: EINVAL}``,
``{signals: {e0: 1}}``, ``{return: N, signals: ...}``, or a mapping from
kernel ranges to any of those.
"""

from __future__ import annotations

import errno as _errno
from dataclasses import dataclass

from vfio_hil._model import KernelProfile
from vfio_hil._scenario.kernels import KernelRange, looks_like_range
from vfio_hil._scenario.nodes import Node, SchemaError, check_keys, describe, did_you_mean

__all__ = ["ByKernel", "Expect", "NoExpectationError", "parse_expect", "slot_number"]

_ERRNO_NAMES = sorted(set(_errno.errorcode.values()))
_MAX_RETURN = 0x7FFFFFFF


class NoExpectationError(Exception):
    """No kernel range (or more than one) of a step matches the running kernel."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Expect:
    """One outcome: ``result`` (a return value or an errno name) and counts."""

    result: int | str
    signals: tuple[tuple[int, int], ...]  # (slot, count); every other slot reads 0
    line: int
    command: int | None = None  # PCI_COMMAND after the step; None: not checked
    info: tuple[int, int] | None = None  # irq_info's (flags, count); None: not checked

    def counters(self, slots: int) -> tuple[int, ...]:
        counts = dict(self.signals)
        return tuple(counts.get(slot, 0) for slot in range(slots))

    def select(self, profile: KernelProfile) -> Expect:
        return self


@dataclass(frozen=True)
class ByKernel:
    """Outcomes per kernel range; exactly one range must hold the kernel."""

    cases: tuple[tuple[KernelRange, Expect], ...]
    line: int

    def select(self, profile: KernelProfile) -> Expect:
        hits = [expect for rng, expect in self.cases if rng.contains(profile.version)]
        if len(hits) == 1:
            return hits[0]
        ranges = ", ".join(repr(str(rng)) for rng, _ in self.cases)
        version = ".".join(map(str, profile.version))
        if not hits:
            message = f"no expectation for kernel {profile.name} ({version}): ranges are {ranges}"
        else:
            message = f"kernel {profile.name} ({version}) is in more than one range of {ranges}"
        raise NoExpectationError(self.line, message)


def slot_number(node: Node, slots: int, what: str) -> int:
    """``e3`` -> 3, refusing names past the scenario's ``eventfds``."""
    name = node.string(what)
    if not (name.startswith("e") and name[1:].isascii() and name[1:].isdigit()):
        raise node.fail(f"{what} must name an eventfd slot like e0, not {name!r}")
    slot = int(name[1:])
    if slot >= slots:
        have = {0: "no slots", 1: "only e0"}.get(slots, f"e0..e{slots - 1}")
        raise node.fail(f"{name} is not a slot: 'eventfds: {slots}' gives {have}")
    return slot


def parse_expect(node: Node | None, slots: int, step_line: int) -> Expect | ByKernel:
    """The ``expect:`` of a step (``node`` is None when the step has none)."""
    if node is None:
        return Expect(0, (), step_line)
    if isinstance(node.value, dict) and any(looks_like_range(k) for k in node.value):
        return _by_kernel(node, slots)
    return _plain(node, slots)


def _by_kernel(node: Node, slots: int) -> ByKernel:
    cases = []
    for key, value in node.mapping("expect").items():
        if not looks_like_range(key):
            raise SchemaError(
                node.key_lines[key],
                f"{key!r} mixed with kernel ranges: per-kernel expect maps only ranges "
                "like '>=6.5' to outcomes",
            )
        try:
            rng = KernelRange.parse(key)
        except ValueError as err:
            raise SchemaError(node.key_lines[key], str(err)) from None
        if isinstance(value.value, dict) and any(looks_like_range(k) for k in value.value):
            raise value.fail("kernel ranges cannot nest: join them with commas ('>=6.5,<7.3')")
        cases.append((rng, _plain(value, slots)))
    if not cases:
        raise node.fail("expect is an empty mapping: give an outcome")
    return ByKernel(tuple(cases), node.line)


def _plain(node: Node, slots: int) -> Expect:
    value = node.value
    if isinstance(value, str):
        if value != "quiet":
            hint = " (an errno is written {errno: " + value + "})" if value in _ERRNO_NAMES else ""
            raise node.fail(f"unknown expect {value!r}: use quiet, an integer or a mapping{hint}")
        return Expect(0, (), node.line)
    if isinstance(value, int) and not isinstance(value, bool):
        return Expect(node.integer("the expected return value", 0, _MAX_RETURN), (), node.line)
    if not isinstance(value, dict):
        raise node.fail(f"expect must be quiet, an integer or a mapping, not {describe(node)}")
    entries = check_keys(node, "expect", ("return", "errno", "signals", "command", "info"))
    if "return" in entries and "errno" in entries:
        raise node.fail("expect gives both return and errno: a call does one or the other")
    result: int | str = 0
    if "return" in entries:
        result = entries["return"].integer("return", 0, _MAX_RETURN)
    if "errno" in entries:
        result = _errno_name(entries["errno"])
    signals = _signals(entries["signals"], slots) if "signals" in entries else ()
    command = entries["command"].integer("command", 0, 0xFFFF) if "command" in entries else None
    info = _info(entries["info"]) if "info" in entries else None
    return Expect(result, signals, node.line, command, info)


def _info(node: Node) -> tuple[int, int]:
    """``{flags: 0x7, count: 1}``: what an irq_info step answers."""
    entries = check_keys(node, "info", ("flags", "count"), required=("flags", "count"))
    return entries["flags"].integer("flags", 0, 0xFFFFFFFF), entries["count"].integer(
        "count", 0, 0xFFFFFFFF
    )


def _errno_name(node: Node) -> str:
    name = node.string("errno")
    if name not in _ERRNO_NAMES:
        raise node.fail(f"unknown errno {name!r}{did_you_mean(name, _ERRNO_NAMES)}")
    return name


def _signals(node: Node, slots: int) -> tuple[tuple[int, int], ...]:
    entries = node.mapping("signals")
    counts = {}
    for key, value in entries.items():
        slot = slot_number(Node(key, node.key_lines[key], node.key_lines[key]), slots, "a key")
        counts[slot] = value.integer(f"the count of {key}", 0, 1 << 62)
    return tuple(sorted((s, c) for s, c in counts.items() if c))
