"""One holder per real device at a time, across pytest-xdist workers and sessions.

A real device is opened under an exclusive ``flock`` on a lock file named
after it, so two workers (or two pytest runs) never hold the same device; a
holder that finds it taken says who has it and how long it will wait, waits
(bounded), and names the holder if it gives up.  Simulated devices belong to
their process and take no lock (``Target.hold``).
"""

from __future__ import annotations

import fcntl
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vfio_hil._errors import VfioHilError

__all__ = ["WAIT_S", "device_lock", "lock_dir"]

WAIT_S = 600.0
_POLL_S = 0.02
_SAY_AFTER_S = 1.0


def lock_dir() -> Path:
    """``VFIO_HIL_LOCK_DIR``, else ``$TMPDIR/vfio-hil-locks``."""
    return Path(
        os.environ.get("VFIO_HIL_LOCK_DIR") or Path(tempfile.gettempdir()) / "vfio-hil-locks"
    )


def _open_lock(spec: str) -> tuple[int, Path]:
    directory = lock_dir()
    path = directory / (re.sub(r"[^A-Za-z0-9_.@-]", "_", spec) + ".lock")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666), path
    except OSError as err:
        raise VfioHilError(
            f"cannot use the device lock directory {directory}: {err.strerror}",
            "set VFIO_HIL_LOCK_DIR to a writable directory (or unset it)",
        ) from None


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "another process"
    except OSError:
        return "another process"


@contextmanager
def device_lock(spec: str, wait_s: float = WAIT_S) -> Iterator[None]:
    """Hold ``spec``'s lock for the block; TimeoutError after ``wait_s``."""
    fd, path = _open_lock(spec)
    try:
        started = time.monotonic()
        said = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                if waited > wait_s:
                    raise TimeoutError(
                        f"{spec} stayed in use by {_holder(path)} for {wait_s:.0f} s ({path})"
                    ) from None
                if not said and waited >= _SAY_AFTER_S:
                    said = True
                    print(
                        f"vfio-hil: {spec} is in use by {_holder(path)}; waiting up to "
                        f"{wait_s:.0f} s ({path})",
                        file=sys.stderr,
                    )
                time.sleep(_POLL_S)
        os.ftruncate(fd, 0)
        os.write(
            fd, f"pid {os.getpid()} ({os.environ.get('PYTEST_XDIST_WORKER', 'main')})".encode()
        )
        yield
    finally:
        os.close(fd)  # closing drops the flock
