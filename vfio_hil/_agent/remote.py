"""Agents on other machines, reached over SSH: ``ssh_channel(host)``.

``ssh HOST python3 -m vfio_hil agent``: SSH does the authentication and
carries the agent's stdin/stdout; nothing listens on either machine.  One
agent per host per process, started at the first open and closed at exit
(the agent also exits when SSH goes, with this process or its network).
``VFIO_HIL_SSH`` replaces the ``ssh`` command (e.g. ``ssh -p 2222 -i key``),
``VFIO_HIL_REMOTE_AGENT`` the command run on the host (default
``python3 -m vfio_hil agent``: vfio-hil installed there for that python).
"""

from __future__ import annotations

import atexit
import os
import shlex
import threading

from vfio_hil._agent.client import AgentChannel
from vfio_hil._agent.spawn import spawn_agent
from vfio_hil._agent.wire import AgentError

__all__ = ["REMOTE_AGENT", "SSH", "close_all", "ssh_argv", "ssh_channel"]

SSH = "ssh -T -o BatchMode=yes"
REMOTE_AGENT = "python3 -m vfio_hil agent"

_CHANNELS: dict[str, AgentChannel] = {}
_LOCK = threading.Lock()


def ssh_argv(host: str) -> list[str]:
    ssh = shlex.split(os.environ.get("VFIO_HIL_SSH") or SSH)
    remote = os.environ.get("VFIO_HIL_REMOTE_AGENT") or REMOTE_AGENT
    if not ssh:
        raise AgentError("VFIO_HIL_SSH is empty", "unset it, or give an ssh command")
    return [*ssh, host, remote]


def ssh_channel(host: str) -> AgentChannel:
    """This process's agent on ``host``, started on first use."""
    with _LOCK:
        channel = _CHANNELS.get(host)
        if channel is None or channel.closed:
            argv = ssh_argv(host)
            try:
                channel = spawn_agent(argv, f"ssh {host}")
            except AgentError as exc:
                raise AgentError(
                    f"no agent on {host}: {exc.message}",
                    f"check `{shlex.join(argv)}` by hand: SSH must log in without a "
                    "prompt (BatchMode) and vfio-hil must be installed there",
                ) from None
            _CHANNELS[host] = channel
        return channel


@atexit.register
def close_all() -> None:
    with _LOCK:
        for channel in _CHANNELS.values():
            channel.close()
        _CHANNELS.clear()
