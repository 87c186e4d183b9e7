"""``vfio-hil agent``: serve devices to a host that drives them (see _agent/).

    vfio-hil agent [--port NAME]

Without ``--port`` it talks over stdin/stdout, as under SSH
(``ssh HOST vfio-hil agent``); the lab starts it with ``--port`` on its
virtio-serial port.  It exits when the channel closes.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_parser"]


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "agent",
        help="open devices here for a host that drives them (over stdin/stdout or a port)",
        description="Serve devices to a host running vfio-hil: it sends steps, this "
        "plays them next to the device.  Exits when the channel closes.",
    )
    parser.add_argument(
        "--port", metavar="NAME", help="a virtio-serial port by name (what the lab uses)"
    )
    parser.set_defaults(handler=_agent)


def _agent(args: argparse.Namespace) -> int:
    from vfio_hil._agent.server import main

    return main(args.port)
