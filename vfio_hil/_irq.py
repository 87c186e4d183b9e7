"""IRQ indexes, GET_IRQ_INFO results and SET_IRQS requests (``IrqSet``).

An ``IrqSet`` is immutable and packs itself once, at construction: sending the
same request many times (the loopback hot path) builds nothing per call.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from vfio_hil import _uapi as u
from vfio_hil._uapi import IrqSetFlag

__all__ = ["FdLike", "IrqIndex", "IrqInfo", "IrqInfoFlag", "IrqSet", "IrqSetFlag"]

_HEADER = struct.Struct("<5I")
_U32 = 0xFFFFFFFF
_S32_MIN, _S32_MAX = -(2**31), 2**31 - 1
_MAX_SUBINDEXES = 2048  # the largest MSI-X table
_DATA_SIZE = {u.VFIO_IRQ_SET_DATA_BOOL: 1, u.VFIO_IRQ_SET_DATA_EVENTFD: 4}
_T = TypeVar("_T")


class IrqIndex(enum.IntEnum):
    """vfio-pci's fixed IRQ indexes (``VFIO_PCI_*_IRQ_INDEX``)."""

    INTX = u.VFIO_PCI_INTX_IRQ_INDEX
    MSI = u.VFIO_PCI_MSI_IRQ_INDEX
    MSIX = u.VFIO_PCI_MSIX_IRQ_INDEX
    ERR = u.VFIO_PCI_ERR_IRQ_INDEX
    REQ = u.VFIO_PCI_REQ_IRQ_INDEX


class IrqInfoFlag(enum.IntFlag):
    """``VFIO_IRQ_INFO_*``."""

    EVENTFD = u.VFIO_IRQ_INFO_EVENTFD
    MASKABLE = u.VFIO_IRQ_INFO_MASKABLE
    AUTOMASKED = u.VFIO_IRQ_INFO_AUTOMASKED
    NORESIZE = u.VFIO_IRQ_INFO_NORESIZE


@dataclass(frozen=True)
class IrqInfo:
    """One ``VFIO_DEVICE_GET_IRQ_INFO`` answer."""

    index: int
    flags: IrqInfoFlag
    count: int

    def __repr__(self) -> str:
        name = _index_name(self.index)
        return f"IrqInfo({name}, flags={int(self.flags):#x}, count={self.count})"


class _HasFd(Protocol):
    @property
    def fd(self) -> int: ...


FdLike = int | _HasFd


def _field(name: str, value: object, low: int, high: int, *, allow_bool: bool = False) -> int:
    """``value`` as an int within low..high, else an error naming the field.

    The one check of every number an ``IrqSet`` carries: the kernel reads
    fixed-width fields, so a value that does not fit must fail here rather
    than be sent wrapped (a count of 2**40 would arrive as 0: a disable).
    """
    # ints and IntEnums; no float, str or None; a bool only where one is meant
    # (True as an fd would be stdout's)
    if not isinstance(value, int) or (isinstance(value, bool) and not allow_bool):
        raise TypeError(f"{name} must be an integer, not {type(value).__name__} {value!r}")
    number = int(value)
    if not low <= number <= high:
        raise ValueError(f"{name} {number} does not fit: it must be in {low}..{high}")
    return number


def _integer(name: str, value: object) -> int:
    """``value`` as an int of any size (``_field``'s type check alone, for a
    number whose range its caller checks in its own words)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {type(value).__name__} {value!r}")
    return int(value)


def _flag(name: str, value: object) -> bool:
    """``value`` if it is a bool, else an error naming the field: ``"false"``
    (a str) and ``2`` are true, so anything but a bool is refused, not read."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {type(value).__name__} {value!r}")
    return value


def _numbered(name: str, values: Iterable[_T], what: str) -> enumerate[_T]:
    """``enumerate(values)``, else a TypeError naming the parameter and what it takes
    (no copy: the hot path's builders pay one call)."""
    try:
        return enumerate(values)
    except TypeError:  # not iterable (5, None): raised here, before any item is read
        raise TypeError(f"{name} must be {what}, not {type(values).__name__} {values!r}") from None


def irq_index(index: object) -> int:
    """An index given as ``IrqIndex``, its number or its name (any case)."""
    if isinstance(index, str):
        try:
            return int(IrqIndex[index.upper()])
        except KeyError:
            names = ", ".join(i.name for i in IrqIndex)
            raise ValueError(
                f"index {index!r} is not an IRQ index: give one of {names}, an IrqIndex or a number"
            ) from None
    # Unknown numbers are allowed: how the kernel refuses them is tested too.
    return _field("index", index, 0, _U32)


def _fd_of(name: str, fd: FdLike) -> int:
    return _field(name, getattr(fd, "fd", fd), _S32_MIN, _S32_MAX)


_BYTES_OR_SEQUENCE = "bytes or a sequence of 0..255"


def _payload(data: bytes | Iterable[int]) -> bytes:
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str | int):  # bytes(5) would be five zeros
        raise TypeError(f"data must be {_BYTES_OR_SEQUENCE}, not {type(data).__name__} {data!r}")
    items = _numbered("data", data, _BYTES_OR_SEQUENCE)
    return bytes(_field(f"data[{i}]", b, 0, 0xFF) for i, b in items)


def _index_name(index: int) -> str:
    try:
        return IrqIndex(index).name
    except ValueError:
        return str(index)


# The scenario format's flag names: IrqSetFlag's without DATA_/ACTION_.
FLAG_NAMES = {f.name.split("_", 1)[1]: int(f) for f in IrqSetFlag if f.name}


def flags_name(flags: int, *, short: bool = False) -> str:
    """``DATA_EVENTFD|ACTION_TRIGGER`` (``short``: ``EVENTFD|TRIGGER``); unknown bits in hex."""
    names = [
        f.name.split("_", 1)[1] if short else f.name for f in IrqSetFlag if flags & f and f.name
    ]
    extra = flags & ~0x3F
    if extra:
        names.append(f"{extra:#x}")
    return "|".join(names) or "0"


def describe_request(
    flags: int, index: int, start: int, count: int, payload: str | None, argsz: int | None
) -> str:
    """``SET_IRQS(index=MSIX, DATA_NONE|ACTION_TRIGGER, start=0, count=1)``: one
    request as ``IrqSet`` and the lockstep ``SetIrqs`` step both show it."""
    parts = [f"index={_index_name(index)}", flags_name(flags), f"start={start}", f"count={count}"]
    if payload is not None:
        parts.append(payload)
    if argsz is not None:
        parts.append(f"argsz={argsz}")
    return f"SET_IRQS({', '.join(parts)})"


@dataclass(frozen=True)
class IrqSet:
    """One ``VFIO_DEVICE_SET_IRQS`` request, exactly as the kernel will read it.

    Use the builders (``IrqSet.trigger(...)``, ``IrqSet.eventfds(...)``, ...);
    ``IrqSet.raw`` builds anything, malformed requests included.  A builder
    takes an index as ``IrqIndex``, number or name (``"MSIX"``).  Every field
    must fit the kernel's: u32 for the header, s32 for an fd, a byte for a
    bool; anything else is a ValueError or TypeError naming the field.
    """

    flags: int
    index: int
    start: int
    count: int
    data: bytes = b""
    argsz: int | None = None
    _packed: bytes = field(init=False, repr=False, compare=False)
    # The same bytes, mutable: fcntl.ioctl returns the ioctl's int result only
    # for a mutable buffer.  SET_IRQS never writes it back (copy_from_user).
    _buffer: bytearray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Every way in (builders, raw, the constructor) passes here: one check.
        for name in ("flags", "index", "start", "count"):
            object.__setattr__(self, name, _field(name, getattr(self, name), 0, _U32))
        if self.argsz is not None:
            object.__setattr__(self, "argsz", _field("argsz", self.argsz, 0, _U32))
        object.__setattr__(self, "data", _payload(self.data))
        argsz = _HEADER.size + len(self.data) if self.argsz is None else self.argsz
        header = _HEADER.pack(argsz, self.flags, self.index, self.start, self.count)
        object.__setattr__(self, "_packed", header + self.data + self._padding(argsz))
        object.__setattr__(self, "_buffer", bytearray(self._packed))

    def _padding(self, argsz: int) -> bytes:
        """Zeros for payload bytes that argsz claims but ``data`` lacks.

        The kernel copies count * size bytes once argsz covers them; padding
        makes that read land in our buffer, identical for device and model.
        No valid index has more than 2048 sub-indexes, so the pad is bounded.
        """
        size = _DATA_SIZE.get(self.flags & u.VFIO_IRQ_SET_DATA_TYPE_MASK, 0)
        wanted = size * min(self.count, _MAX_SUBINDEXES)
        if len(self.data) >= wanted or argsz - _HEADER.size < wanted:
            return b""
        return bytes(wanted - len(self.data))

    # --- builders -----------------------------------------------------------
    @classmethod
    def raw(
        cls,
        flags: int,
        index: int | str,
        start: int,
        count: int,
        data: bytes | Iterable[int] = b"",
        argsz: int | None = None,
    ) -> IrqSet:
        """Any request at all; ``argsz`` defaults to 20 + len(data)."""
        return cls(flags, irq_index(index), start, count, _payload(data), argsz)

    @classmethod
    def eventfds(cls, index: int | str, start: int, fds: Iterable[FdLike]) -> IrqSet:
        """ACTION_TRIGGER|DATA_EVENTFD: assign (fd >= 0) or de-assign (-1) triggers."""
        items = _numbered("fds", fds, "a sequence of EventFds or fd numbers")
        numbers = [_fd_of(f"fds[{i}]", fd) for i, fd in items]
        data = struct.pack(f"<{len(numbers)}i", *numbers)
        return cls.raw(_TRIGGER | _EVENTFD, index, start, len(numbers), data)

    @classmethod
    def trigger(cls, index: int | str, start: int = 0, count: int = 1) -> IrqSet:
        """ACTION_TRIGGER|DATA_NONE: loopback-signal every vector in the range."""
        return cls.raw(_TRIGGER | _NONE, index, start, count)

    @classmethod
    def trigger_bool(cls, index: int | str, start: int, bools: Iterable[bool | int]) -> IrqSet:
        """ACTION_TRIGGER|DATA_BOOL: loopback-signal the vectors whose byte is set."""
        return cls._bools(_TRIGGER, index, start, bools)

    @classmethod
    def mask(cls, index: int | str, start: int = 0, count: int = 1) -> IrqSet:
        return cls.raw(_MASK | _NONE, index, start, count)

    @classmethod
    def mask_bool(cls, index: int | str, start: int, bools: Iterable[bool | int]) -> IrqSet:
        return cls._bools(_MASK, index, start, bools)

    @classmethod
    def unmask(cls, index: int | str, start: int = 0, count: int = 1) -> IrqSet:
        return cls.raw(_UNMASK | _NONE, index, start, count)

    @classmethod
    def unmask_bool(cls, index: int | str, start: int, bools: Iterable[bool | int]) -> IrqSet:
        return cls._bools(_UNMASK, index, start, bools)

    @classmethod
    def unmask_eventfd(cls, index: int | str, fd: FdLike) -> IrqSet:
        """ACTION_UNMASK|DATA_EVENTFD: a write to ``fd`` unmasks (-1 unregisters)."""
        return cls.raw(_UNMASK | _EVENTFD, index, 0, 1, struct.pack("<i", _fd_of("fd", fd)))

    @classmethod
    def disable(cls, index: int | str) -> IrqSet:
        """ACTION_TRIGGER|DATA_NONE with count 0: tear the whole index down."""
        return cls.raw(_TRIGGER | _NONE, index, 0, 0)

    @classmethod
    def _bools(
        cls, action: int, index: int | str, start: int, bools: Iterable[bool | int]
    ) -> IrqSet:
        items = _numbered("bools", bools, "a sequence of bools or 0..255")
        data = bytes(_field(f"bools[{i}]", b, 0, 0xFF, allow_bool=True) for i, b in items)
        return cls.raw(action | _BOOL, index, start, len(data), data)

    # --- views --------------------------------------------------------------
    def pack(self) -> bytes:
        """The exact bytes handed to the ioctl: 20-byte header, then data."""
        return self._packed

    @property
    def data_type(self) -> int:
        return self.flags & u.VFIO_IRQ_SET_DATA_TYPE_MASK

    @property
    def action(self) -> int:
        return self.flags & u.VFIO_IRQ_SET_ACTION_TYPE_MASK

    @property
    def fds(self) -> tuple[int, ...]:
        """The s32 values of an EVENTFD payload (whole words only)."""
        n = len(self.data) // 4
        return struct.unpack_from(f"<{n}i", self.data) if n else ()

    def __repr__(self) -> str:
        payload = None
        if self.data:
            if self.flags & _EVENTFD and len(self.data) % 4 == 0:
                payload = f"fds={list(self.fds)}"
            else:
                payload = f"data={list(self.data)}"
        return describe_request(self.flags, self.index, self.start, self.count, payload, self.argsz)


_NONE = u.VFIO_IRQ_SET_DATA_NONE
_BOOL = u.VFIO_IRQ_SET_DATA_BOOL
_EVENTFD = u.VFIO_IRQ_SET_DATA_EVENTFD
_MASK = u.VFIO_IRQ_SET_ACTION_MASK
_UNMASK = u.VFIO_IRQ_SET_ACTION_UNMASK
_TRIGGER = u.VFIO_IRQ_SET_ACTION_TRIGGER
