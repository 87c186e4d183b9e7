"""Shared test fixtures for vfio-hil's own test suite."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from vfio_hil import EventFd


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
