"""An ``EventfdTable`` over real file descriptors, as the kernel sees them.

``get`` checks a number the way ``eventfd_ctx_fdget`` does (a closed or
O_PATH fd is EBADF, an open file that is no eventfd is EINVAL) and keeps a
``dup`` of it: the kernel's reference, which outlives the caller's fd.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
from dataclasses import dataclass, field

__all__ = ["HeldEventfd", "RealEventfds"]

_EVENTFD_LINK = "anon_inode:[eventfd]"


@dataclass(eq=False)
class HeldEventfd:
    """The simulated kernel's reference to one eventfd."""

    fd: int  # our dup: signals go here
    user_fd: int  # the number the caller passed
    identity: str = field(default="")  # fdinfo's eventfd-id (all eventfds share one inode)

    def user_fd_alive(self) -> bool:
        """Does the caller's fd number still name this eventfd?"""
        return _eventfd_id(self.user_fd) == self.identity


def _eventfd_id(fd: int) -> str:
    """The eventfd's identity from /proc/self/fdinfo ("" if fd is not open)."""
    try:
        with open(f"/proc/self/fdinfo/{fd}") as info:
            for line in info:
                if line.startswith("eventfd-id:"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return ""
    return "?"  # an older kernel without eventfd-id: open is all we can tell


# Our dups live high so a number the caller closed is not soon reused by us.
_HELD_FD_FLOOR = 512


class RealEventfds:
    """Validate, hold, signal and release real eventfds."""

    def __init__(self) -> None:
        self._held: set[int] = set()

    def get(self, fd: int) -> HeldEventfd | int:
        if fd in self._held:
            return -errno.EBADF  # the caller never had this number: it is ours
        try:
            if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_PATH:
                return -errno.EBADF
            link = os.readlink(f"/proc/self/fd/{fd}")
        except (OSError, OverflowError):
            return -errno.EBADF
        if link != _EVENTFD_LINK:
            return -errno.EINVAL
        dup = _dup_high(fd)
        self._held.add(dup)
        return HeldEventfd(dup, fd, _eventfd_id(fd))

    def put(self, ref: object) -> None:
        assert isinstance(ref, HeldEventfd)
        if ref.fd >= 0:
            self._held.discard(ref.fd)
            os.close(ref.fd)
            ref.fd = -1

    def signal(self, ref: object) -> None:
        assert isinstance(ref, HeldEventfd)
        os.eventfd_write(ref.fd, 1)

    def pending(self, ref: object) -> int:
        assert isinstance(ref, HeldEventfd)
        poller = select.poll()
        poller.register(ref.fd, select.POLLIN)
        return 1 if poller.poll(0) else 0

    def same(self, a: object, b: object) -> bool:
        assert isinstance(a, HeldEventfd)
        assert isinstance(b, HeldEventfd)
        if a is b:
            return True
        known = a.identity not in ("", "?")  # "?": no eventfd-id in fdinfo (old kernel)
        return known and a.identity == b.identity

    def drain(self, ref: object) -> int:
        """``eventfd_ctx_do_read``: take the counter, as virqfd_wakeup does."""
        assert isinstance(ref, HeldEventfd)
        try:
            return os.eventfd_read(ref.fd)
        except BlockingIOError:
            return 0


def _dup_high(fd: int) -> int:
    try:
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, _HELD_FD_FLOOR)
    except OSError:  # a low RLIMIT_NOFILE: take any number
        return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 0)
