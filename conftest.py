"""Shared test fixtures for vfio-hil's own test suite."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from vfio_hil import EventFd

if TYPE_CHECKING:
    from vfio_hil._agent import AgentChannel


@pytest.fixture
def make_eventfds() -> Iterator[Callable[[int], list[EventFd]]]:
    """``make_eventfds(n)``: n fresh eventfds, all closed at teardown."""
    made: list[EventFd] = []

    def make(n: int, initval: int = 0) -> list[EventFd]:
        new = [EventFd(initval) for _ in range(n)]
        made.extend(new)
        return new

    yield make
    for efd in made:
        efd.close()


@pytest.fixture
def agent() -> Iterator[AgentChannel]:
    """A device agent (``vfio-hil agent``) in a child process, closed at teardown."""
    from vfio_hil._agent import spawn_agent
    from vfio_hil._agent.spawn import local_agent_argv

    channel = spawn_agent(local_agent_argv(), "test agent")
    try:
        yield channel
    finally:
        channel.close()
