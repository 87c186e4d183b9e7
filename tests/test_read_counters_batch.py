"""read_counters reads many eventfds in one call; what each holds, in order."""

from __future__ import annotations

import pytest

from vfio_hil import EventFd, read_counters


def test_empty_and_pending_eventfds_mixed_read_in_order_and_reset() -> None:
    efds = [EventFd() for _ in range(7)]
    try:
        for i, value in ((1, 3), (2, 1), (5, 2), (6, 9)):
            efds[i].write(value)
        assert read_counters(efds) == [0, 3, 1, 0, 0, 2, 9]
        assert read_counters(efds) == [0] * 7
    finally:
        for e in efds:
            e.close()


def test_hundreds_of_eventfds_read_their_own_counts() -> None:
    efds = [EventFd() for _ in range(300)]  # the default open-file limit is 1024
    try:
        for i, e in enumerate(efds):
            if i % 3:
                e.write(i)
        assert read_counters(efds) == [i if i % 3 else 0 for i in range(300)]
    finally:
        for e in efds:
            e.close()


def test_a_semaphore_eventfd_reads_one_per_read() -> None:
    with EventFd(semaphore=True) as sem:
        sem.write(2)
        assert read_counters([sem, sem, sem]) == [1, 1, 0]


def test_a_generator_and_an_empty_list_are_read_too() -> None:
    with EventFd(initval=4) as efd:
        assert read_counters(e for e in [efd]) == [4]
    assert read_counters([]) == []


def test_a_closed_eventfd_is_refused() -> None:
    with EventFd() as a, EventFd() as b:
        b.close()
        with pytest.raises(ValueError, match="EventFd is closed"):
            read_counters([a, b])
