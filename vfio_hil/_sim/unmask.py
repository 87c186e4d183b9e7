"""The simulated virqfd: a write to the INTx unmask eventfd unmasks.

In the kernel, ``virqfd_wakeup`` runs inside the writer's ``write(2)`` and the
re-fire goes to a workqueue; here a small thread polls the registered
eventfd and calls back under the device lock, so the effect is likewise
"soon after the write".  The thread exits when nothing is registered.
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
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._thread: threading.Thread | None = None

    def watch(self, ref: HeldEventfd | None) -> None:
        """Follow ``ref`` (None: stop).  Call with the device lock held."""
        self._ref = ref
        os.eventfd_write(self._wake, 1)
        # The thread clears _thread under the lock as it decides to exit, so
        # a registration can never land on a thread that is on its way out.
        if ref is not None and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="vfio-hil-virqfd", daemon=True)
            self._thread.start()

    def idle(self) -> bool:
        """Nothing left to do: no eventfd followed, or it holds no count.

        Call with the device lock held (the thread fires under it).
        """
        ref = self._ref
        return ref is None or ref.fd < 0 or not _readable(ref.fd)

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
                ref = self._ref
                if ref is None or ref.fd < 0:
                    self._thread = None
                    return
            poller = select.poll()
            poller.register(self._wake, select.POLLIN)
            poller.register(ref.fd, select.POLLIN)
            events = dict(poller.poll(_LIVENESS_PERIOD_MS))
            if events.get(self._wake):
                with contextlib.suppress(BlockingIOError):
                    os.eventfd_read(self._wake)
            with self._lock:
                if self._ref is not ref:
                    continue
                if not ref.user_fd_alive():
                    self._released()
                elif events.get(ref.fd) and self._eventfds.drain(ref):
                    self._fired()


def _readable(fd: int) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))
