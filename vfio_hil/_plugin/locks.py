"""One holder per device at a time, across pytest-xdist workers and sessions.

A device is opened under an exclusive ``flock`` on a lock file named after
it, so two workers (or two pytest runs) never hold the same device; a
worker that finds it taken waits, bounded, and says who to blame if it
gives up.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["LOCK_DIR", "device_lock"]

LOCK_DIR = Path(os.environ.get("VFIO_HIL_LOCK_DIR", Path(tempfile.gettempdir()) / "vfio-hil-locks"))
WAIT_S = 600.0
_POLL_S = 0.02


def _path(spec: str) -> Path:
    return LOCK_DIR / (re.sub(r"[^A-Za-z0-9_.@-]", "_", spec) + ".lock")


@contextmanager
def device_lock(spec: str, wait_s: float = WAIT_S) -> Iterator[None]:
    """Hold ``spec``'s lock for the block; TimeoutError after ``wait_s``."""
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    path = _path(spec)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    holder = path.read_text().strip() or "another process"
                    raise TimeoutError(
                        f"{spec} stayed in use by {holder} for {wait_s:.0f} s ({path})"
                    ) from None
                time.sleep(_POLL_S)
        os.ftruncate(fd, 0)
        os.write(
            fd, f"pid {os.getpid()} ({os.environ.get('PYTEST_XDIST_WORKER', 'main')})".encode()
        )
        yield
    finally:
        os.close(fd)  # closing drops the flock
