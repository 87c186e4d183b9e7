"""``vfio-hil diff TARGET``: the spec matrix and random sequences against the model."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vfio_hil._cli.common import positive
from vfio_hil._exit import Exit

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    diff = sub.add_parser(
        "diff", help="play the spec matrix and random sequences against the model"
    )
    diff.add_argument("target", help="an address bound to vfio-pci, or sim:PRESET[@KERNEL]")
    diff.add_argument(
        "--seeds", type=int, default=20, metavar="N", help="random sequences (default 20)"
    )
    diff.add_argument(
        "--length", type=positive, default=40, metavar="N", help="steps per sequence (default 40)"
    )
    diff.set_defaults(handler=_diff)


def _diff(args: argparse.Namespace) -> int:
    from vfio_hil._diff.check import run_differential
    from vfio_hil._targets import parse_target

    if args.seeds < 0:
        print(f"vfio-hil diff: --seeds must be 0 or more, not {args.seeds}", file=sys.stderr)
        return Exit.USAGE
    target = parse_target(args.target)
    report = run_differential(
        target.open,
        seeds=range(args.seeds),
        length=args.length,
        progress=lambda m: print(m, file=sys.stderr),
    )
    print(report.summary())
    if report.disagreements:
        print(report.details())
        return Exit.FAILED
    return Exit.OK
