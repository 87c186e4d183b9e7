"""``vfio-hil selftests build``: the kernel's VFIO selftests, for ``--selftests``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vfio_hil._exit import Exit

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    selftests = sub.add_parser(
        "selftests", help="the kernel's own VFIO selftests (tools/testing/selftests/vfio)"
    )
    actions = selftests.add_subparsers(dest="action", required=True, parser_class=type(selftests))
    build = actions.add_parser(
        "build",
        help="build them against their kernel tree's own headers, cached under the kernel cache",
    )
    build.add_argument(
        "--source",
        default=None,
        metavar="X.Y|PATH",
        help="Debian's linux-source-X.Y (fetched through the lab's apt setup) or a kernel "
        "tree (default: 7.2, the lab kernel's source)",
    )
    build.set_defaults(handler=_build)


def _build(args: argparse.Namespace) -> int:
    from vfio_hil._lab._util import LabError
    from vfio_hil._lab.build import DEFAULT_SOURCE
    from vfio_hil._lab.kernels import cache_dir
    from vfio_hil._selftests.build import build_selftests

    try:
        built = build_selftests(cache_dir(), args.source or DEFAULT_SOURCE)
    except LabError as err:
        print(f"vfio-hil selftests build: {err}", file=sys.stderr)
        return Exit.USAGE
    what = "built" if built.rebuilt else "up to date"
    print(
        f"VFIO selftests of {built.provenance}: {what} in {built.bin_dir} ({built.seconds:.1f} s)"
    )
    for note in built.workarounds:
        print(f"  worked around: {note}")
    print(f"  {len(built.binaries)} binaries: {', '.join(built.binaries)}")
    print("  run them: vfio-hil run --lab iommufd --selftests")
    print("        or: pytest --vfio-selftests --vfio-device ADDRESS")
    return Exit.OK
