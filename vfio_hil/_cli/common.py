"""What several subcommands share: argument types and the lab runner."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

__all__ = ["PROFILES", "in_lab", "positive"]

PROFILES = ("ci", "dev", "fuzz")


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a positive whole number, not {text!r}")
    return value


def in_lab(kernel: str, command: Sequence[str], timeout: float | None = None) -> int:
    """Run ``command`` in a lab guest per kernel of ``kernel`` (``vfio-hil lab run``)."""
    from vfio_hil._cli.lab import run_guarded

    return run_guarded([kernel], command, **({"timeout": timeout} if timeout else {}))
