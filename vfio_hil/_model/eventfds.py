"""How the model holds eventfds: the kernel's ``eventfd_ctx`` references.

The model never touches an fd itself.  It asks an ``EventfdTable`` to look a
number up (``eventfd_ctx_fdget``: EBADF or EINVAL), to signal a reference
(``eventfd_signal``) and to drop it (``eventfd_ctx_put``).  ``SimDevice``
backs the table with real eventfds; ``CountingEventfds`` backs it with plain
counters, so the model also runs with no file descriptors at all.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["CountingEventfds", "EventfdRef", "EventfdTable"]


class EventfdRef(Protocol):
    """An eventfd the kernel holds a reference on.  Compared by identity."""


class EventfdTable(Protocol):
    def get(self, fd: int) -> EventfdRef | int:
        """A new reference to the eventfd behind ``fd``, or a negative errno."""

    def put(self, ref: EventfdRef) -> None:
        """Drop a reference taken by ``get``."""

    def signal(self, ref: EventfdRef) -> None:
        """Add one to the eventfd's counter."""

    def pending(self, ref: EventfdRef) -> int:
        """The eventfd's current counter (virqfd looks at it on registration)."""

    def same(self, a: EventfdRef, b: EventfdRef) -> bool:
        """Do two references name one eventfd (one ``eventfd_ctx``)?"""

    def drain(self, ref: EventfdRef) -> int:
        """Take the counter (``eventfd_ctx_do_read``); what it was."""


@dataclass(eq=False)
class Counter:
    """A model eventfd: a counter that model signals add to."""

    label: str
    value: int = 0
    refs: int = 0

    def __repr__(self) -> str:
        return f"<eventfd {self.label}={self.value}>"


@dataclass
class CountingEventfds:
    """An ``EventfdTable`` of counters keyed by made-up fd numbers.

    ``open()`` makes an eventfd, ``close(fd)`` forgets the number (the
    counter lives on while the model holds references, as in the kernel),
    ``not_eventfd()`` makes a number that names an open non-eventfd file.
    """

    counters: dict[int, Counter] = field(default_factory=dict)
    others: set[int] = field(default_factory=set)
    next_fd: int = 100

    def open(self, initval: int = 0) -> int:
        fd = self._new_fd()
        self.counters[fd] = Counter(str(fd), initval)
        return fd

    def not_eventfd(self) -> int:
        fd = self._new_fd()
        self.others.add(fd)
        return fd

    def close(self, fd: int) -> None:
        self.counters.pop(fd, None)
        self.others.discard(fd)

    def read(self, fd: int) -> int:
        counter = self.counters[fd]
        value, counter.value = counter.value, 0
        return value

    def get(self, fd: int) -> Counter | int:
        if fd in self.others:
            return -errno.EINVAL
        counter = self.counters.get(fd)
        if counter is None:
            return -errno.EBADF
        counter.refs += 1
        return counter

    def put(self, ref: EventfdRef) -> None:
        assert isinstance(ref, Counter)
        ref.refs -= 1

    def signal(self, ref: EventfdRef) -> None:
        assert isinstance(ref, Counter)
        ref.value += 1

    def pending(self, ref: EventfdRef) -> int:
        assert isinstance(ref, Counter)
        return ref.value

    def same(self, a: EventfdRef, b: EventfdRef) -> bool:
        return a is b

    def drain(self, ref: EventfdRef) -> int:
        assert isinstance(ref, Counter)
        value, ref.value = ref.value, 0
        return value

    def _new_fd(self) -> int:
        fd, self.next_fd = self.next_fd, self.next_fd + 1
        return fd
