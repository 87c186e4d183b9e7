"""Non-blocking eventfds: what the kernel signals and the tests read."""

from __future__ import annotations

import os
import select
from collections.abc import Iterable
from types import TracebackType

__all__ = ["EventFd", "read_counters"]


class EventFd:
    """A non-blocking, close-on-exec eventfd.

    ``read()`` returns the counter and resets it (1 per read in semaphore
    mode), or 0 when nothing is pending; it never blocks.
    """

    __slots__ = ("_fd", "semaphore")

    def __init__(self, initval: int = 0, semaphore: bool = False) -> None:
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

    def write(self, value: int = 1) -> None:
        """Add ``value`` to the counter (what a device-side writer does)."""
        os.eventfd_write(self.fd, value)

    def wait(self, timeout: float) -> int:
        """The counter once it is non-zero, or 0 after ``timeout`` seconds."""
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        if poller.poll(max(0, int(timeout * 1000))):
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


def read_counters(fds: Iterable[EventFd]) -> list[int]:
    """Read (and reset) every eventfd, in order: one call for many."""
    return [e.read() for e in fds]
