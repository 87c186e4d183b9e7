"""Steps of a request sequence, independent of which device plays them.

A step names eventfds by slot (``"e3"``), not by number, so the same
sequence can be realized on a real device and on its simulated twin, each
with its own eventfds.  ``"closed"`` is a number that is not open and
``"notfd"`` an open file that is not an eventfd.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from vfio_hil._irq import IrqSet, describe_request

__all__ = [
    "BarWrite",
    "Clear",
    "FdRef",
    "GetIrqInfo",
    "PendEventfd",
    "Raise",
    "Reopen",
    "Reset",
    "SetCommand",
    "SetDisIntx",
    "SetIrqs",
    "Step",
    "WriteEventfd",
]

# An EVENTFD payload entry: "eN" (slot N), "closed", "notfd", or a literal int.
FdRef = int | str


@dataclass(frozen=True)
class SetIrqs:
    """VFIO_DEVICE_SET_IRQS with slot-named eventfds."""

    flags: int
    index: int
    start: int
    count: int
    fds: tuple[FdRef, ...] | None = None
    bools: bytes | None = None
    argsz: int | None = None

    def realize(self, resolve: FdResolver) -> IrqSet:
        if self.fds is not None:
            data = struct.pack(f"<{len(self.fds)}i", *(resolve(ref) for ref in self.fds))
        else:
            data = self.bools or b""
        return IrqSet.raw(self.flags, self.index, self.start, self.count, data, self.argsz)

    def __repr__(self) -> str:
        payload = None
        if self.fds is not None:
            payload = f"fds={list(self.fds)}"
        elif self.bools is not None:
            payload = f"data={list(self.bools)}"
        return describe_request(self.flags, self.index, self.start, self.count, payload, self.argsz)


@dataclass(frozen=True)
class Raise:
    """The device raises interrupt status bits (edu: a write to 0x60)."""

    value: int = 1


@dataclass(frozen=True)
class Clear:
    """The device clears interrupt status bits (edu: a write to 0x64)."""

    value: int = 0xFFFFFFFF


@dataclass(frozen=True)
class Reset:
    """VFIO_DEVICE_RESET."""


@dataclass(frozen=True)
class Reopen:
    """Close the device (the last close) and open it again."""


@dataclass(frozen=True)
class WriteEventfd:
    """Write 1 to an eventfd slot: what makes a registered unmask eventfd fire."""

    slot: int


@dataclass(frozen=True)
class PendEventfd:
    """Write 1 to an eventfd slot *after* the counters are read, so the next
    step finds it holding a count (an unmask eventfd registered with a count
    pending unmasks at once: vfio_virqfd_enable())."""

    slot: int


@dataclass(frozen=True)
class SetDisIntx:
    """Set or clear PCI_COMMAND.INTx-disable through the config region."""

    disable: bool


@dataclass(frozen=True)
class SetCommand:
    """Write ``value`` to PCI_COMMAND through the config region, as a user's driver does.

    The command read back afterwards is compared (``Observation.command``).
    """

    value: int


@dataclass(frozen=True)
class BarWrite:
    """A raw 32-bit write to BAR0 at ``offset``, with PCI_COMMAND left as it is.

    Unlike ``Raise``/``Clear`` (which first turn on memory decoding and bus
    mastering, as edu's stimulus does), this is the write a user's driver
    makes: EIO while memory decoding is off, an MSI dropped while bus
    mastering is off.  On edu 0x60 raises and 0x64 clears interrupt status.
    """

    offset: int
    value: int


@dataclass(frozen=True)
class GetIrqInfo:
    """VFIO_DEVICE_GET_IRQ_INFO for ``index``: its flags and count are compared."""

    index: int


Step = (
    SetIrqs
    | Raise
    | Clear
    | Reset
    | Reopen
    | WriteEventfd
    | SetDisIntx
    | GetIrqInfo
    | SetCommand
    | BarWrite
    | PendEventfd
)
# Steps after which both sides' PCI_COMMAND is read and compared.
COMMAND_STEPS = (SetCommand, SetDisIntx, Reset, Reopen)


class FdResolver:
    """Maps slot names to this side's numbers."""

    def __init__(self, eventfds: list[int], closed: int, not_eventfd: int) -> None:
        self._eventfds = eventfds
        self._closed = closed
        self._not_eventfd = not_eventfd

    def __call__(self, ref: FdRef) -> int:
        if isinstance(ref, int):
            return ref
        if ref == "closed":
            return self._closed
        if ref == "notfd":
            return self._not_eventfd
        if ref.startswith("e") and ref[1:].isascii() and ref[1:].isdigit():
            return self._eventfds[int(ref[1:])]
        raise ValueError(f"unknown fd reference {ref!r}: use eN, closed, notfd or an integer")
