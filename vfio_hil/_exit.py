"""The exit codes of every vfio-hil command, in one place."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["Exit"]


class Exit(IntEnum):
    OK = 0  # agreement, every test passed
    FAILED = 1  # a disagreement, a failed test or command
    USAGE = 2  # a usage or setup error: nothing was checked
    GUEST_FAILED = 3  # the lab's guest did not boot or run the command
    INTERRUPTED = 130  # SIGINT or SIGTERM
