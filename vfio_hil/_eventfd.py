"""Non-blocking eventfds: what the kernel signals and the tests read."""

from __future__ import annotations

import math
import operator
import os
import select
from collections.abc import Iterable
from types import TracebackType
from typing import Protocol, runtime_checkable

from vfio_hil._irq import _U32, _field, _flag

__all__ = ["EventFd", "eventfd_list", "read_counters"]

_U64 = 2**64 - 1  # a write(2) of 8 bytes (the kernel refuses 2**64 - 1 itself: EINVAL)
_POLL_MAX_S = (2**31 - 1) / 1000  # poll(2) takes an int of milliseconds


class EventFd:
    """A non-blocking, close-on-exec eventfd.

    ``read()`` returns the counter and resets it (1 per read in semaphore
    mode), or 0 when nothing is pending; it never blocks.
    """

    __slots__ = ("_fd", "semaphore")

    def __init__(self, initval: int = 0, semaphore: bool = False) -> None:
        self._fd = -1  # closed, should a check below refuse an argument
        initval = _field("initval", initval, 0, _U32)  # eventfd(2) takes an unsigned int
        _flag("semaphore", semaphore)  # "no" would be a semaphore
        flags = os.EFD_NONBLOCK | os.EFD_CLOEXEC | (os.EFD_SEMAPHORE if semaphore else 0)
        self._fd = os.eventfd(initval, flags)
        self.semaphore = semaphore

    @property
    def fd(self) -> int:
        if self._fd < 0:
            raise ValueError("EventFd is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def read(self) -> int:
        try:
            return os.eventfd_read(self._fd)
        except BlockingIOError:
            return 0
        except ValueError:  # os's "file descriptor cannot be a negative integer (-1)"
            if self._fd < 0:
                raise ValueError("EventFd is closed") from None
            raise

    def write(self, value: int = 1) -> None:
        """Add ``value`` to the counter (what a device-side writer does)."""
        os.eventfd_write(self.fd, _field("value", value, 0, _U64))

    def wait(self, timeout: float) -> int:
        """The counter once it is non-zero, or 0 after ``timeout`` seconds
        (a finite number, at most poll(2)'s 24.8 days; 0 or less: no wait)."""
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        if poller.poll(_milliseconds(timeout)):
            return self.read()
        return 0

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def fileno(self) -> int:
        return self.fd

    def __enter__(self) -> EventFd:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_fd", -1) >= 0:
            os.close(self._fd)

    def __repr__(self) -> str:
        return f"EventFd(fd={self._fd})" if self._fd >= 0 else "EventFd(closed)"


def _milliseconds(timeout: object) -> int:
    """``timeout`` seconds as poll(2)'s milliseconds, else an error naming it."""
    if not isinstance(timeout, int | float) or isinstance(timeout, bool):
        raise TypeError(
            f"timeout must be a number of seconds, not {type(timeout).__name__} {timeout!r}"
        )
    if (isinstance(timeout, float) and not math.isfinite(timeout)) or timeout > _POLL_MAX_S:
        raise ValueError(
            f"timeout {timeout!r} is not a number of seconds poll(2) can wait: "
            f"give one up to {_POLL_MAX_S:.0f} s"
        )
    return int(timeout * 1000) if timeout > 0 else 0


def read_counters(fds: Iterable[EventFd]) -> list[int]:
    """Read (and reset) every eventfd, in order: one call for many.

    The fast path (every item an open ``EventFd``, the common case) reads
    them in one C loop, ``map(os.eventfd_read, ...)``, with no Python frame
    per eventfd: at 2048 MSI-X vectors the per-item ``read()`` calls were
    most of the time in a TCG guest.
    """
    try:
        items: list[object] | None = list(fds)
    except TypeError:
        items = None  # eventfd_list says what fds should be
    if items is not None and set(map(type, items)) <= {EventFd}:
        numbers = list(map(_FD_OF, items))
        if not numbers or min(numbers) >= 0:  # a closed one reads as before: ValueError
            return _read_fds(numbers)
    return [e.read() for e in eventfd_list(fds if items is None else items)]


_FD_OF = operator.attrgetter("_fd")


def _read_fds(numbers: list[int]) -> list[int]:
    """``os.eventfd_read`` of each fd in order; one with nothing pending reads 0.

    ``list.extend`` keeps what it appended before the iterator raised (CPython),
    and ``map`` has taken the fd that raised from the shared iterator, so the
    loop resumes after it."""
    read, pending = os.eventfd_read, iter(numbers)
    counters: list[int] = []
    while True:
        try:
            counters.extend(map(read, pending))
            return counters
        except BlockingIOError:
            counters.append(0)


@runtime_checkable
class EventFdLike(Protocol):
    """An EventFd, or one that lives elsewhere (``RemoteEventFd``, in an agent)."""

    @property
    def fd(self) -> int: ...

    def read(self) -> int: ...


def eventfd_list(fds: Iterable[object], name: str = "fds") -> list[EventFd]:
    """``fds`` as a list, each checked to be an EventFd (or ``EventFdLike``)
    before any is read (a read resets a counter), else a TypeError naming the
    first that is not."""
    try:
        items = list(fds)
    except TypeError:
        raise TypeError(
            f"{name} must be a sequence of EventFds, not {type(fds).__name__} {fds!r}"
        ) from None
    checked: list[EventFd] = []
    for i, efd in enumerate(items):
        if not isinstance(efd, EventFd | EventFdLike):
            raise TypeError(f"{name}[{i}] must be an EventFd, not {type(efd).__name__} {efd!r}")
        checked.append(efd)  # type: ignore[arg-type]
    return checked
