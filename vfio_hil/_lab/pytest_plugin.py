"""pytest plugin loaded inside lab guests: log each test's start to /dev/kmsg.

A marker in the kernel log is ordered with the kernel's own messages, so an
Oops on the console is attributed to the test that was running, whatever
pytest's verbosity and however the console interleaves stdout.
"""

from __future__ import annotations

import contextlib
import os

_KMSG = "/dev/kmsg"
# printk keeps at most ~1 KiB per record; long parametrised ids are cut.
_MAX_ID = 900
_fd: int | None = None


def pytest_configure() -> None:
    """Open /dev/kmsg once (root only; outside a guest this is a no-op)."""
    global _fd
    try:
        _fd = os.open(_KMSG, os.O_WRONLY)
    except OSError:
        _fd = None


def pytest_runtest_logstart(nodeid: str) -> None:
    """Write ``vfio-hil: test <nodeid>`` at notice level (<5>) before each test."""
    if _fd is not None:
        with contextlib.suppress(OSError):
            os.write(_fd, f"<5>vfio-hil: test {nodeid[:_MAX_ID]}\n".encode())


def pytest_unconfigure() -> None:
    """Close /dev/kmsg."""
    global _fd
    if _fd is not None:
        os.close(_fd)
        _fd = None
