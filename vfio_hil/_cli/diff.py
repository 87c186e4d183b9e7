"""``vfio-hil diff TARGET``: the spec matrix and random sequences against the model."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vfio_hil._exit import Exit

__all__ = ["MAX_LENGTH", "MAX_SEEDS", "add_parser"]

# Sequences are drawn lazily, so these bound the run's time, not its memory:
# a million steps of a real device's settle time is already hours.
MAX_LENGTH = 1_000_000
MAX_SEEDS = 1_000_000


def _whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number in ``low..high`` (a usage error otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"a whole number from {low} to {high:_}, not {text!r}")
        return value

    return parse


def add_parser(sub: Any) -> None:
    diff = sub.add_parser(
        "diff", help="play the spec matrix and random sequences against the model"
    )
    diff.add_argument("target", help="an address bound to vfio-pci, or sim:PRESET[@KERNEL]")
    diff.add_argument(
        "--seeds",
        type=_whole(0, MAX_SEEDS),
        default=20,
        metavar="N",
        help=f"random sequences (default 20, at most {MAX_SEEDS:_})",
    )
    diff.add_argument(
        "--length",
        type=_whole(1, MAX_LENGTH),
        default=40,
        metavar="N",
        help=f"steps per sequence (default 40, at most {MAX_LENGTH:_})",
    )
    diff.add_argument(
        "--coverage",
        action="store_true",
        help="print the state-space cells the check reached and those it never did",
    )
    diff.add_argument(
        "--coverage-html",
        type=Path,
        metavar="FILE",
        help="--coverage, and write its heat map to FILE (one static HTML page)",
    )
    diff.set_defaults(handler=_diff)


def _diff(args: argparse.Namespace) -> int:
    from vfio_hil._coverage.report import reported
    from vfio_hil._diff.check import run_differential
    from vfio_hil._targets import parse_target

    target = parse_target(args.target)
    with reported(args.coverage, args.coverage_html, "vfio-hil diff"):
        report = run_differential(
            target.open,
            seeds=range(args.seeds),
            length=args.length,
            progress=lambda m: print(m, file=sys.stderr, flush=True),
        )
    print(report.summary())
    if report.disagreements:
        print(report.details())
        return Exit.FAILED
    return Exit.OK
