"""Small helpers shared by the host-side lab modules."""

from __future__ import annotations

import sys


class LabError(Exception):
    """A lab failure with a message meant for the user (what failed, what to do)."""


def log(message: str) -> None:
    """Print a progress line on stderr (stdout stays free for command output)."""
    print(f"lab: {message}", file=sys.stderr, flush=True)
