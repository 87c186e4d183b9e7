"""Start an agent as a child process and talk to it over its stdin/stdout."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

from vfio_hil._agent.client import AgentChannel
from vfio_hil._agent.wire import AgentError

__all__ = ["local_agent_argv", "spawn_agent"]


def local_agent_argv() -> list[str]:
    return [sys.executable, "-m", "vfio_hil", "agent"]


def spawn_agent(
    argv: Sequence[str], where: str, env: Mapping[str, str] | None = None
) -> AgentChannel:
    """Run ``argv`` (an agent: ``vfio-hil agent``, or ``ssh HOST vfio-hil agent``)
    and return its channel, checked with a ``hello``.  The agent exits when the
    channel closes, and with this process: its stdin ends when we die."""
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=None if env is None else dict(env),
        )
    except OSError as exc:
        raise AgentError(f"cannot start the agent {argv[0]!r}: {exc.strerror}") from None
    assert proc.stdin is not None
    assert proc.stdout is not None
    # The channel owns its own copies of the pipe ends; Popen's files go.
    channel = AgentChannel(os.dup(proc.stdout.fileno()), os.dup(proc.stdin.fileno()), where, proc)
    proc.stdout.close()
    proc.stdin.close()
    proc.stdin = proc.stdout = None
    try:
        channel.hello()
    except AgentError:
        channel.close()
        raise
    return channel
