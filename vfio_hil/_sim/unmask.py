"""The simulated virqfd: a write to the INTx unmask eventfd unmasks.

In the kernel, ``virqfd_wakeup`` runs inside the writer's ``write(2)``: it
takes the eventfd's count and unmasks, and the re-fire goes to a workqueue.
A count already pending when the eventfd is registered runs the handler once
(``vfio_virqfd_enable``, which the model does) and stays in the eventfd.

Here the eventfd is watched edge-triggered (``EPOLLET``: every write is an
event, a count that was there before is not), by a small thread that calls
back under the device lock soon after a write, and by ``catch_up``, which
the device calls under its lock before every operation, so an operation
never runs before the effect of a write that came earlier.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
from collections.abc import Callable

from vfio_hil._sim.eventfds import HeldEventfd, RealEventfds

__all__ = ["UnmaskWatcher"]

# How often a registered eventfd is checked for having been closed by its
# owner (the kernel learns that from EPOLLHUP, which a dup would hide).
_LIVENESS_PERIOD_MS = 20


class UnmaskWatcher:
    def __init__(
        self,
        lock: threading.RLock,
        eventfds: RealEventfds,
        fired: Callable[[], None],
        released: Callable[[], None],
    ) -> None:
        self._lock = lock
        self._eventfds = eventfds
        self._fired = fired
        self._released = released
        self._ref: HeldEventfd | None = None
        self._epoll: select.epoll | None = None  # the writes to _ref, edge-triggered
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._thread: threading.Thread | None = None

    def watch(self, ref: HeldEventfd | None) -> None:
        """Follow ``ref`` (None: stop).  Call with the device lock held."""
        if ref is self._ref:
            return
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None
        self._ref = ref
        if ref is not None and ref.fd >= 0:
            self._epoll = select.epoll()
            self._epoll.register(ref.fd, select.EPOLLIN | select.EPOLLET)
            self._epoll.poll(0)  # a count from before registration is no write
        os.eventfd_write(self._wake, 1)
        # The thread clears _thread under the lock as it decides to exit, so
        # a registration can never land on a thread that is on its way out.
        if ref is not None and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="vfio-hil-virqfd", daemon=True)
            self._thread.start()

    def catch_up(self) -> None:
        """Take the effect of every write so far.  Call with the device lock held."""
        ref, epoll = self._ref, self._epoll
        # eventfd_ctx_do_read() in virqfd_wakeup(); nothing to take: the model
        # took it already, inside its own signal of a trigger sharing the eventfd.
        if ref is not None and epoll is not None and epoll.poll(0) and self._eventfds.drain(ref):
            self._fired()

    def stop(self) -> None:
        with self._lock:
            self.watch(None)
            thread = self._thread
        if thread is not None:
            thread.join(timeout=1.0)
        os.close(self._wake)

    def _run(self) -> None:
        while True:
            with self._lock:
                ref, epoll = self._ref, self._epoll
                if ref is None or epoll is None:
                    self._thread = None
                    return
                watched = epoll.fileno()
            poller = select.poll()
            poller.register(self._wake, select.POLLIN)
            poller.register(watched, select.POLLIN)  # readable: a write is waiting
            events = dict(poller.poll(_LIVENESS_PERIOD_MS))
            if events.get(self._wake):
                with contextlib.suppress(BlockingIOError):
                    os.eventfd_read(self._wake)
            with self._lock:
                if self._epoll is not epoll:
                    continue  # re-registered meanwhile: look again
                if ref.user_fd_alive():
                    self.catch_up()
                else:
                    self._released()
