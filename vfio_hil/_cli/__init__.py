"""``vfio-hil``: one parser tree, one module per subcommand.

Each module has ``add_parser(sub)``, which registers its subcommand and sets
``handler``; ``main`` parses, calls the handler, and turns the errors a user
can fix into one line and ``Exit.USAGE``.  Every exit status is an ``Exit``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from vfio_hil._cli import agent, bench, devices, diff, fuzz, info, lab, replay, run, selftests
from vfio_hil._errors import VfioError, VfioHilError
from vfio_hil._exit import Exit

__all__ = ["main", "make_parser"]

_COMMANDS = (run, diff, fuzz, replay, bench, devices, info, lab, agent, selftests)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(Exit.USAGE, f"{self.prog}: error: {message}\n")


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vfio-hil",
        description="Check VFIO interrupt semantics on real and simulated devices.",
        epilog="Exit status: 0 agreement or pass, 1 a disagreement or failed test, "
        "2 usage or setup error, 3 a lab guest failed, 130 interrupted.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for command in _COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        code = int(args.handler(args))
        sys.stdout.flush()  # here, where a closed pipe can still be caught
        return code
    except (VfioHilError, VfioError) as err:
        print(f"vfio-hil {args.command}: {err}", file=sys.stderr)
        return Exit.USAGE
    except KeyboardInterrupt:
        print(f"vfio-hil {args.command}: interrupted", file=sys.stderr)
        return Exit.INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`vfio-hil info sim:edu | head -3`): stop quietly,
        # and keep Python from complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return Exit.OK
