"""EventFd: read resets, never blocks; wait is bounded."""

from __future__ import annotations

import os
import threading

import pytest

from vfio_hil import EventFd, read_counters


def test_read_returns_the_sum_of_writes_and_resets() -> None:
    with EventFd() as efd:
        os.eventfd_write(efd.fd, 1)
        os.eventfd_write(efd.fd, 2)
        assert efd.read() == 3
        assert efd.read() == 0


def test_read_of_an_empty_eventfd_is_zero_not_a_block() -> None:
    with EventFd() as efd:
        assert efd.read() == 0


def test_initval_is_pending_at_once() -> None:
    with EventFd(initval=5) as efd:
        assert efd.read() == 5


def test_semaphore_mode_reads_one_at_a_time() -> None:
    with EventFd(initval=2, semaphore=True) as efd:
        assert [efd.read(), efd.read(), efd.read()] == [1, 1, 0]


def test_wait_times_out_with_zero() -> None:
    with EventFd() as efd:
        assert efd.wait(0.01) == 0


def test_wait_returns_a_signal_that_arrives_later() -> None:
    with EventFd() as efd:
        timer = threading.Timer(0.02, efd.write, args=(4,))
        timer.start()
        assert efd.wait(5.0) == 4
        timer.join()


def test_close_is_idempotent_and_fd_then_raises() -> None:
    efd = EventFd()
    efd.close()
    efd.close()
    assert efd.closed
    with pytest.raises(ValueError, match="closed"):
        _ = efd.fd


def test_read_counters_reads_many_in_order() -> None:
    efds = [EventFd(initval=n) for n in (0, 1, 2)]
    try:
        assert read_counters(efds) == [0, 1, 2]
        assert read_counters(efds) == [0, 0, 0]
    finally:
        for efd in efds:
            efd.close()
