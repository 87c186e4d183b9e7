"""Hypothesis strategies for ``VFIO_DEVICE_SET_IRQS`` requests.

Every strategy produces ``SetIrqs`` steps (re-exported here) whose eventfds
are named by slot (``"e3"``), so a drawn request can be realized on any
device: a real one, a ``SimDevice``, or both sides of a differential run.
Requests are drawn *within and around* a device's capabilities, read from its
GET_IRQ_INFO counts: boundaries (``start = count-1``, ``start+count = count``,
``count = 0``), one past the end, ``start`` near 2**32 and sums that wrap,
sparse DATA_BOOL arrays, eventfd arrays with ``-1`` holes, closed fds, fds
that are not eventfds and ``fd <= -2``, illegal flag combinations, and short
and long ``argsz``.

``validity`` picks the class (see ``vfio_hil._fuzz.classify``): ``"valid"``
requests pass the kernel's header validation and reach a handler (which may
still refuse them in the device's current state); ``"invalid"`` ones are
refused by every device with those counts in every state; ``"mixed"`` draws
both and shrinks toward valid.

```python
from hypothesis import given
from vfio_hil import SimDevice, VfioError
from vfio_hil.strategies import requests

dev = SimDevice.virtio_msix(vectors=8)

@given(requests(dev, validity="invalid"))
def test_refused(step):
    ...  # step.realize(FdResolver(...)) -> IrqSet; dev.set_irqs(...) raises VfioError
```

Arguments are checked when the strategy is built: a bad one raises
``hypothesis.errors.InvalidArgument`` at once, not at the first draw.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Literal, TypeVar

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from vfio_hil import _uapi as u
from vfio_hil._device import Device
from vfio_hil._diff.cases import SLOTS
from vfio_hil._lockstep.steps import FdRef, FdResolver, SetIrqs
from vfio_hil._lockstep.twin import irq_counts
from vfio_hil._uapi import IRQ_SET_HEADER_SIZE as HEADER_SIZE

__all__ = [
    "KINDS",
    "VALIDITIES",
    "FdResolver",  # turns a drawn step's slot names into real descriptors
    "SetIrqs",  # what requests() draws; .realize(resolver) gives an IrqSet
    "bool_arrays",
    "fd_arrays",
    "fd_refs",
    "invalid_ranges",
    "requests",
    "valid_ranges",
]

_T = TypeVar("_T")
Validity = Literal["valid", "invalid", "mixed"]
VALIDITIES: tuple[str, ...] = ("valid", "invalid", "mixed")
# Kinds of valid request: what a request of each kind exercises.
KINDS: tuple[str, ...] = (
    "trigger_eventfd",  # TRIGGER|EVENTFD: enable, swap, -1 de-assign, partial failure
    "trigger_none",  # TRIGGER|NONE: loopback every vector; count 0 disables the index
    "trigger_bool",  # TRIGGER|BOOL: sparse loopback
    "mask",  # INTx MASK with NONE or BOOL
    "unmask",  # INTx UNMASK with NONE or BOOL
    "unmask_eventfd",  # INTx UNMASK|EVENTFD: register (or -1: unregister) the unmask eventfd
)
_INTX_ONLY = ("mask", "unmask", "unmask_eventfd")

U32 = 0xFFFFFFFF
MAX_COUNT = 2048  # the largest MSI-X table
_MAX_PAYLOAD = 256  # longer invalid ranges carry a stub payload: validation fails first
_DRAWN_ENTRIES = 64  # longer payload arrays are a drawn pattern, repeated
_NONE = u.VFIO_IRQ_SET_DATA_NONE
_BOOL = u.VFIO_IRQ_SET_DATA_BOOL
_EVENTFD = u.VFIO_IRQ_SET_DATA_EVENTFD
_MASK = u.VFIO_IRQ_SET_ACTION_MASK
_UNMASK = u.VFIO_IRQ_SET_ACTION_UNMASK
_TRIGGER = u.VFIO_IRQ_SET_ACTION_TRIGGER
_INTX = u.VFIO_PCI_INTX_IRQ_INDEX
_NUM_IRQS = u.VFIO_PCI_NUM_IRQS
_DATA_TYPES = (_NONE, _BOOL, _EVENTFD)
_SPECIAL_FDS: tuple[FdRef, ...] = ("closed", "notfd", -2, -(2**31))
# A failed lookup (what unwinds) twice as often as fd <= -2 (what only ERR/REQ check).
_BAD_ENTRY: tuple[FdRef, ...] = ("closed", "notfd", "closed", "notfd", -2, -(2**31))


# --- argument checks ---------------------------------------------------------------


def _counts(source: Device | Mapping[int, int]) -> dict[int, int]:
    if isinstance(source, Mapping):
        counts = dict(source)
    elif isinstance(source, Device):
        counts = irq_counts(source)
    else:
        raise InvalidArgument(
            f"expected a Device or a mapping index -> GET_IRQ_INFO count, got {source!r}"
        )
    for index, count in counts.items():
        if not isinstance(index, int) or not 0 <= index < _NUM_IRQS:
            raise InvalidArgument(f"IRQ index {index!r} is not one of vfio-pci's 0..4")
        if not isinstance(count, int) or not 0 <= count <= MAX_COUNT:
            raise InvalidArgument(f"count {count!r} of index {index} is not in 0..{MAX_COUNT}")
    return counts


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidArgument(f"{name}={value!r} must be an integer in {low}..{high}")
    return value


# --- payloads ----------------------------------------------------------------------


def fd_refs(
    *, slots: int = SLOTS, holes: bool = True, bad: bool = True
) -> st.SearchStrategy[FdRef]:
    """One EVENTFD payload entry: a slot ``eN``, a ``-1`` hole, or a bad fd.

    Slots are drawn most, then ``-1`` (de-assign), then each bad kind
    (``closed``: EBADF, ``notfd``: EINVAL, ``-2`` and INT_MIN: fd <= -2).
    Shrinks toward ``"e0"``.
    """
    _check_int("slots", slots, 1, 256)
    return _fd_refs(slots, holes, bad)


@lru_cache(maxsize=256)
def _fd_refs(slots: int, holes: bool, bad: bool) -> st.SearchStrategy[FdRef]:
    pool: list[FdRef] = [f"e{k}" for k in range(slots)]
    if holes:
        pool += [-1] * max(1, slots // 6)
    if bad:
        pool += list(_SPECIAL_FDS)
    return st.sampled_from(pool)


def fd_arrays(
    length: int, *, slots: int = SLOTS, holes: bool = True, bad: bool = True
) -> st.SearchStrategy[tuple[FdRef, ...]]:
    """``length`` EVENTFD entries: three arrays in eight hold bad fds.

    Most arrays are slots with some ``-1`` holes, so that enables succeed and
    state builds up; a dirty array has one bad entry at a drawn position (the
    partial-failure unwind) or bad entries anywhere.  Shrinks toward a clean
    array of ``"e0"``.
    """
    _check_int("length", length, 0, MAX_COUNT)
    _check_int("slots", slots, 1, 256)
    return _fd_arrays(length, slots, holes, bad)


@lru_cache(maxsize=1024)
def _fd_arrays(
    length: int, slots: int, holes: bool, bad: bool
) -> st.SearchStrategy[tuple[FdRef, ...]]:
    if length > _DRAWN_ENTRIES:
        return _long_fd_arrays(length, slots, holes, bad)
    clean = st.lists(_fd_refs(slots, holes, False), min_size=length, max_size=length)
    if not bad or not length:
        return clean.map(tuple)
    anywhere = st.lists(_fd_refs(slots, holes, True), min_size=length, max_size=length)

    @st.composite
    def draw_array(draw: st.DrawFn) -> tuple[FdRef, ...]:
        how = draw(st.integers(0, 7))  # 0-4 clean, 5-6 one bad entry, 7 bad anywhere
        if how == 7:
            return tuple(draw(anywhere))
        entries = draw(clean)
        if how >= 5:
            entries[draw(st.integers(0, length - 1))] = draw(st.sampled_from(_BAD_ENTRY))
        return tuple(entries)

    return draw_array()


def _cycled(pattern: list[_T], length: int) -> list[_T]:
    return (pattern * (length // len(pattern) + 1))[:length]


def _long_fd_arrays(
    length: int, slots: int, holes: bool, bad: bool
) -> st.SearchStrategy[tuple[FdRef, ...]]:
    """An array too long to draw entry by entry (a 2048-vector enable would
    take ~90 ms a draw): a short pattern of slots and holes repeated, with the
    same dirt as a short array's (one bad entry anywhere, the partial-failure
    unwind far up the table; or a few).  Shrinks toward all ``"e0"``."""
    pattern = st.lists(_fd_refs(slots, holes, False), min_size=1, max_size=8)
    position = st.integers(0, length - 1)

    @st.composite
    def draw_array(draw: st.DrawFn) -> tuple[FdRef, ...]:
        entries = _cycled(draw(pattern), length)
        how = draw(st.integers(0, 7)) if bad else 0  # 0-4 clean, 5-6 one bad entry, 7 a few
        for _ in range(0 if how < 5 else 1 if how < 7 else draw(st.integers(2, 4))):
            entries[draw(position)] = draw(st.sampled_from(_BAD_ENTRY))
        return tuple(entries)

    return draw_array()


def bool_arrays(length: int) -> st.SearchStrategy[bytes]:
    """A sparse DATA_BOOL array of ``length`` bytes: mostly 0, some 1, a few 0x80/0xff.

    Any non-zero byte means "signal", so 0x80 and 0xff test that too.
    Shrinks toward all zeros (the quiet loopback).
    """
    _check_int("length", length, 0, MAX_COUNT)
    return _bool_arrays(length)


@lru_cache(maxsize=1024)
def _bool_arrays(length: int) -> st.SearchStrategy[bytes]:
    byte = st.sampled_from([0, 0, 1, 0, 1, 0x80, 0xFF])
    if length <= _DRAWN_ENTRIES:
        return st.lists(byte, min_size=length, max_size=length).map(bytes)
    # Too long to draw byte by byte: a short pattern repeated, a few bytes set apart.
    pattern = st.lists(byte, min_size=1, max_size=8)
    spots = st.lists(st.tuples(st.integers(0, length - 1), byte), max_size=4)

    @st.composite
    def draw_array(draw: st.DrawFn) -> bytes:
        data = bytearray(_cycled(list(draw(pattern)), length))
        for at, value in draw(spots):
            data[at] = value
        return bytes(data)

    return draw_array()


# --- ranges -------------------------------------------------------------------------


def valid_ranges(
    n: int, *, max_count: int = 8, large: bool = True
) -> st.SearchStrategy[tuple[int, int]]:
    """``(start, count)`` that pass the range check for an index of count ``n``.

    Boundaries are favoured: ``start`` 0 or ``n-1`` or near the end, ``count``
    0, 1, or the rest of the index (``start+count = n``).  ``count`` is at
    most ``max_count``, except on an index larger than that with ``large``
    (the default): there a share of the draws that grows with ``n`` (a
    sixteenth at 2 * max_count, half from 256 * max_count: 2048 vectors) are
    large ranges: the whole index, the rest of it from a start anywhere or in
    its upper half, or a count anywhere past ``max_count``.  Shrinks toward
    ``(0, 1)`` (or ``(0, 0)``); a large range toward a small one.
    """
    _check_int("n", n, 1, MAX_COUNT)
    _check_int("max_count", max_count, 1, MAX_COUNT)
    if not isinstance(large, bool):
        raise InvalidArgument(f"large={large!r} must be True or False")
    return _valid_ranges(n, max_count, large)


def large_share(n: int, max_count: int) -> int:
    """How many sixteenths of the valid ranges on an index of ``n`` are large:
    one more for each doubling of ``n`` past ``max_count``, at most eight."""
    if n <= max_count:
        return 0
    return min(8, (n // max_count).bit_length() - 1) or 1


@lru_cache(maxsize=1024)
def _valid_ranges(n: int, max_count: int, large: bool) -> st.SearchStrategy[tuple[int, int]]:
    share = large_share(n, max_count) if large else 0

    @st.composite
    def draw_range(draw: st.DrawFn) -> tuple[int, int]:
        # 0 (what a shrink goes to) is a small range; the top ``share`` of 0..15 large.
        if share and draw(st.integers(0, 15)) >= 16 - share:
            return draw(_large_ranges(n, max_count))
        start = draw(
            st.one_of(
                st.just(0),
                st.integers(0, n - 1),
                st.just(n - 1),
                st.integers(max(0, n - max_count), n - 1),
            )
        )
        room = n - start
        how = draw(st.integers(0, 7))  # 0: one, 1: zero, 2: the rest of the index, else any
        if how == 0:
            return start, 1
        if how == 1:
            return start, 0
        if how == 2 and room <= max_count:
            return start, room
        return start, draw(st.integers(1, min(room, max_count)))

    return draw_range()


@lru_cache(maxsize=1024)
def _large_ranges(n: int, max_count: int) -> st.SearchStrategy[tuple[int, int]]:
    """Ranges past ``max_count`` on an index of ``n > max_count``: the whole
    index, the rest of it (``start+count = n``) from anywhere or from its upper
    half, and a count in max_count+1..room from such a start."""

    @st.composite
    def draw_range(draw: st.DrawFn) -> tuple[int, int]:
        where = draw(st.integers(0, 3))  # 0: the whole index, 1: upper half, 2-3: anywhere
        if where == 0:
            return 0, n
        high = n - max_count - 1  # room for max_count + 1 at least
        start = draw(st.integers(min(n // 2, high) if where == 1 else 0, high))
        room = n - start
        if draw(st.booleans()):
            return start, room
        return start, draw(st.integers(max_count + 1, room))

    return draw_range()


def invalid_ranges(
    n: int, *, max_count: int = 8, large: bool = True
) -> st.SearchStrategy[tuple[int, int]]:
    """``(start, count)`` that the range checks refuse for an index of count ``n``.

    ``start == n``, one past the end (``start+count = n+1``), ``start`` past the
    end, ``start`` near 2**32, ``start+count`` exactly 2**32 (wraps to 0),
    ``count >= 2**32-1-start`` (the overflow guard's boundary), and ``count``
    past ``n`` from 0.  On an index larger than ``max_count`` (with ``large``) also a large
    range one past the end from any start, and counts 2048 and 2049 from 0
    (the largest MSI-X table, and one more).  Shrinks toward ``(n, 1)``.
    """
    _check_int("n", n, 0, MAX_COUNT)
    _check_int("max_count", max_count, 1, MAX_COUNT)
    if not isinstance(large, bool):
        raise InvalidArgument(f"large={large!r} must be True or False")
    return _invalid_ranges(n, max_count, large)


@lru_cache(maxsize=1024)
def _invalid_ranges(n: int, max_count: int, large: bool) -> st.SearchStrategy[tuple[int, int]]:
    small = st.integers(0, max_count)
    wrap = st.integers(1, max_count).map(lambda k: (U32 + 1 - k, k))  # start+count == 2**32
    options = [
        st.tuples(st.just(n), st.just(1)),  # start == count
        st.tuples(st.just(n), small),
        wrap,
        wrap,
        st.tuples(st.just(U32), st.sampled_from([0, 1, 2])),  # start near 2**32
        st.sampled_from([(1, U32 - 1), (0, U32), (2, U32 - 2), (U32 - 1, 1)]),  # V1's guard
        st.integers(n + 1, n + max_count).map(lambda c: (0, c)),  # count past n
        st.tuples(st.integers(n, U32), small),  # start anywhere past the end
    ]
    if n:  # one past the end: start+count == n+1
        one_past = st.integers(max(0, n - max_count), n - 1).map(lambda s: (s, n - s + 1))
        options[1:1] = [one_past, one_past, one_past]
    if large and n > max_count:  # a large range one past the end, and the largest tables' sizes
        options.append(st.integers(0, n - 1).map(lambda s: (s, n - s + 1)))
        options.append(st.sampled_from([(0, c) for c in (MAX_COUNT, MAX_COUNT + 1) if c > n]))
    return st.one_of(options)


# --- requests ----------------------------------------------------------------------


def _payload(
    draw: st.DrawFn, data: int, count: int, slots: int, bad_fds: bool, stub: bool = False
) -> dict[str, tuple[FdRef, ...] | bytes]:
    """The payload for ``count`` sub-indexes; with ``stub`` (an invalid request)
    a 1-entry stub when ``count`` is huge."""
    length = count if count <= _MAX_PAYLOAD or not stub else 1
    if data == _EVENTFD:
        return {"fds": draw(fd_arrays(length, slots=slots, bad=bad_fds))}
    if data == _BOOL:
        return {"bools": draw(bool_arrays(length))}
    return {}


def _long_argsz(draw: st.DrawFn, payload: int) -> int:
    """An argsz past the payload (up to 2**32-1): the kernel copies only count * size."""
    extra = draw(st.one_of(st.integers(1, 64), st.just(U32 - HEADER_SIZE - payload)))
    return HEADER_SIZE + payload + extra


def _valid_request(
    counts: dict[int, int],
    focus: list[int],
    kinds: tuple[str, ...],
    slots: int,
    max_count: int,
    bad_fds: bool,
    large: bool,
) -> st.SearchStrategy[SetIrqs]:
    present = [i for i in focus if counts.get(i)]
    pairs = [(k, i) for k in kinds for i in present if i == _INTX or k not in _INTX_ONLY]

    @st.composite
    def draw_request(draw: st.DrawFn) -> SetIrqs:
        kind, index = draw(st.sampled_from(pairs))
        n = counts[index]
        if kind == "unmask_eventfd":
            start, count = 0, 1
        else:
            start, count = draw(valid_ranges(n, max_count=max_count, large=large))
        if kind in ("mask", "unmask"):
            action, data = (
                (_MASK if kind == "mask" else _UNMASK),
                draw(st.sampled_from([_NONE, _BOOL])),
            )
        elif kind == "unmask_eventfd":
            action, data = _UNMASK, _EVENTFD
        else:
            action = _TRIGGER
            data = {"trigger_eventfd": _EVENTFD, "trigger_none": _NONE, "trigger_bool": _BOOL}[kind]
        payload = _payload(draw, data, count, slots, bad_fds)
        size = 4 * count if data == _EVENTFD else count if data == _BOOL else 0
        argsz = _long_argsz(draw, size) if draw(st.integers(0, 9)) == 9 else None
        return SetIrqs(action | data, index, start, count, argsz=argsz, **payload)  # type: ignore[arg-type]

    return draw_request()


@lru_cache(maxsize=8)
def _invalid_flags(intx: bool) -> st.SearchStrategy[int]:
    """Flags that no handler takes: bad bits, not one data type, not one action."""
    data = st.sampled_from([_NONE, _BOOL, _EVENTFD])
    options = [
        st.tuples(data, st.integers(6, 31)).map(lambda d: _TRIGGER | d[0] | 1 << d[1]),
        st.just(_TRIGGER),  # no data type
        st.sampled_from([_NONE | _BOOL, _NONE | _EVENTFD, _BOOL | _EVENTFD, 7]).map(
            lambda d: _TRIGGER | d
        ),
        data,  # no action
        st.tuples(
            st.sampled_from([_MASK | _TRIGGER, _MASK | _UNMASK, _UNMASK | _TRIGGER, 0x38]), data
        ).map(lambda a: a[0] | a[1]),
    ]
    if intx:
        options.append(st.just(_MASK | _EVENTFD))  # not implemented in any kernel
    else:
        options.append(
            st.tuples(st.sampled_from([_MASK, _UNMASK]), data).map(lambda a: a[0] | a[1])
        )
    return st.one_of(options)


def _invalid_request(
    counts: dict[int, int], focus: list[int], slots: int, max_count: int, large: bool
) -> st.SearchStrategy[SetIrqs]:
    present = focus or [_INTX]

    @st.composite
    def draw_request(draw: st.DrawFn) -> SetIrqs:
        # The range checks are where the historical bugs were: draw them most.
        reason = draw(st.sampled_from(["range", "range", "range", "flags", "short argsz", "index"]))
        index = draw(st.sampled_from(present))
        if reason == "index":
            index = draw(st.one_of(st.sampled_from(range(_NUM_IRQS)), st.integers(_NUM_IRQS, U32)))
        n = counts.get(index, 0) if index < _NUM_IRQS else 0
        data = draw(st.sampled_from([_NONE, _BOOL, _EVENTFD]))
        flags = _TRIGGER | data
        if reason == "flags":
            flags = draw(_invalid_flags(index == _INTX))
        if reason in ("range", "index") or not n:
            start, count = draw(invalid_ranges(n, max_count=max_count, large=large))
        else:
            start, count = draw(valid_ranges(n, max_count=max_count, large=large))
        single = flags & u.VFIO_IRQ_SET_DATA_TYPE_MASK  # a payload only for one data type
        payload = (
            _payload(draw, single, count, slots, True, stub=True) if single in _DATA_TYPES else {}
        )
        argsz = None
        if reason == "short argsz":
            if data == _NONE or not count:
                argsz = draw(st.integers(0, HEADER_SIZE - 1))
            else:
                need = count * (4 if data == _EVENTFD else 1)
                # argsz is a u32: for a huge count every u32 value is short
                argsz = draw(st.integers(0, min(U32, HEADER_SIZE + need - 1)))
        return SetIrqs(flags, index, start, count, argsz=argsz, **payload)  # type: ignore[arg-type]

    return draw_request()


def requests(
    device: Device | Mapping[int, int],
    *,
    validity: Validity = "mixed",
    kinds: Iterable[str] | None = None,
    slots: int = SLOTS,
    max_count: int = 8,
    bad_fds: bool = True,
    indexes: Iterable[int] | None = None,
    large: bool = True,
) -> st.SearchStrategy[SetIrqs]:
    """SET_IRQS requests for a device (or its GET_IRQ_INFO counts by index).

    validity: ``"valid"``, ``"invalid"`` or ``"mixed"`` (module docstring).
    kinds:    restrict valid requests to some of ``KINDS`` (default: all that
              the device has an index for; ``mask``/``unmask``/``unmask_eventfd``
              need INTx).  Invalid requests cover every kind.
    slots:    eventfd slots ``e0..e{slots-1}`` that payloads name.
    max_count: the largest ``count`` drawn inside an index (boundaries past it
              are drawn separately; ``start+count = n`` is kept reachable).
    bad_fds:  let valid EVENTFD payloads hold ``closed``, ``notfd`` and fd <= -2
              (``-1`` holes are always drawn).
    indexes:  draw only these indexes (default: every index with a count;
              invalid requests still wander to absent indexes and past 4).
    large:    on an index larger than ``max_count``, also draw large ranges,
              more of them the larger the index (``valid_ranges``); their
              long payloads are a short drawn pattern, repeated.

    Shrinking (hypothesis prefers fewer choices, so these are directions,
    not guarantees): valid before invalid; toward the lowest index and the
    first kind; ``start`` toward 0 and ``count`` toward 1 or 0; payloads
    toward all ``e0`` and all zero bytes; ``argsz`` toward exact; an invalid
    request toward ``start == n, count == 1`` on a present index.
    """
    counts = _counts(device)
    focus = sorted(i for i, n in counts.items() if n) if indexes is None else sorted(set(indexes))
    bad_index = [i for i in focus if not isinstance(i, int) or not 0 <= i < _NUM_IRQS]
    if bad_index:
        raise InvalidArgument(f"indexes={bad_index!r}: vfio-pci's indexes are 0..4")
    if validity not in VALIDITIES:
        raise InvalidArgument(f"validity={validity!r}: use one of {', '.join(VALIDITIES)}")
    _check_int("slots", slots, 1, 256)
    _check_int("max_count", max_count, 1, MAX_COUNT)
    if not isinstance(large, bool):
        raise InvalidArgument(f"large={large!r} must be True or False")
    chosen = tuple(KINDS if kinds is None else kinds)
    unknown = [k for k in chosen if k not in KINDS]
    if unknown or not chosen:
        raise InvalidArgument(f"kinds={list(chosen)!r}: choose from {', '.join(KINDS)}")
    valid: st.SearchStrategy[SetIrqs] | None = None
    if validity != "invalid":
        has_intx = bool(counts.get(_INTX)) and _INTX in focus
        usable = tuple(k for k in chosen if has_intx or k not in _INTX_ONLY)
        if not any(counts.get(i) for i in focus) or not usable:
            raise InvalidArgument(
                f"no valid request of kinds {list(chosen)} exists for counts {counts}: "
                "the device needs a non-zero count (INTx for mask/unmask kinds)"
            )
        valid = _valid_request(counts, focus, usable, slots, max_count, bad_fds, large)
    if validity == "valid":
        assert valid is not None
        return valid
    invalid = _invalid_request(counts, focus, slots, max_count, large)
    return invalid if valid is None else st.one_of(valid, invalid)
