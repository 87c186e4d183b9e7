"""Loopback (ACTION_TRIGGER with DATA_NONE / DATA_BOOL) on every trigger index."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vfio_hil import Device, EventFd, IrqIndex, IrqSet, read_counters
from vfio_hil.suite._helpers import need, outcome

VECTORED = [IrqIndex.INTX, IrqIndex.MSI, IrqIndex.MSIX]
MakeFds = Callable[[int], list[EventFd]]


def enable(device: Device, index: int, fds: list[EventFd]) -> None:
    assert outcome(device, IrqSet.eventfds(index, 0, fds)) == 0


@pytest.mark.parametrize("index", VECTORED, ids=lambda i: i.name)
def test_data_none_signals_every_assigned_vector_once(
    device: Device, index: IrqIndex, eventfds: MakeFds
) -> None:
    n = min(need(device, index), 8)
    fds = eventfds(n)
    enable(device, index, fds)
    assert outcome(device, IrqSet.trigger(index, 0, n)) == 0
    assert read_counters(fds) == [1] * n
    assert read_counters(fds) == [0] * n  # a read resets the counter


@pytest.mark.parametrize("index", VECTORED, ids=lambda i: i.name)
def test_sparse_bool_signals_exactly_the_set_bytes(
    device: Device, index: IrqIndex, eventfds: MakeFds
) -> None:
    n = min(need(device, index), 8)
    fds = eventfds(n)
    enable(device, index, fds)
    pattern = [(k * 5 + 1) % 3 == 0 for k in range(n)]
    assert outcome(device, IrqSet.trigger_bool(index, 0, pattern)) == 0
    assert read_counters(fds) == [int(p) for p in pattern]


@pytest.mark.parametrize("index", [IrqIndex.MSI, IrqIndex.MSIX], ids=lambda i: i.name)
def test_deassigned_vectors_are_skipped(device: Device, index: IrqIndex, eventfds: MakeFds) -> None:
    n = min(need(device, index, 3), 8)
    fds = eventfds(n)
    enable(device, index, fds)
    assert outcome(device, IrqSet.eventfds(index, 1, [-1])) == 0
    assert outcome(device, IrqSet.trigger(index, 0, n)) == 0
    assert read_counters(fds) == [1, 0] + [1] * (n - 2)


@pytest.mark.parametrize("index", [IrqIndex.MSI, IrqIndex.MSIX], ids=lambda i: i.name)
def test_rebind_moves_the_signal(device: Device, index: IrqIndex, eventfds: MakeFds) -> None:
    need(device, index, 2)
    old0, old1, new1 = eventfds(3)
    enable(device, index, [old0, old1])
    assert outcome(device, IrqSet.eventfds(index, 1, [new1])) == 0
    assert outcome(device, IrqSet.trigger(index, 0, 2)) == 0
    assert read_counters([old0, old1, new1]) == [1, 0, 1]


@pytest.mark.parametrize("index", VECTORED, ids=lambda i: i.name)
def test_disable_stops_loopback(device: Device, index: IrqIndex, eventfds: MakeFds) -> None:
    need(device, index)
    fds = eventfds(1)
    enable(device, index, fds)
    assert outcome(device, IrqSet.disable(index)) == 0
    assert outcome(device, IrqSet.trigger(index, 0, 1)) == "EINVAL"
    assert read_counters(fds) == [0]


@pytest.mark.parametrize("index", [IrqIndex.ERR, IrqIndex.REQ], ids=lambda i: i.name)
def test_err_req_loopback(device: Device, index: IrqIndex, eventfds: MakeFds) -> None:
    need(device, index)
    (efd,) = eventfds(1)
    assert outcome(device, IrqSet.eventfds(index, 0, [efd])) == 0
    assert outcome(device, IrqSet.trigger(index)) == 0
    assert outcome(device, IrqSet.trigger_bool(index, 0, [0])) == 0
    assert efd.read() == 1
    assert outcome(device, IrqSet.eventfds(index, 0, [-1])) == 0
    assert outcome(device, IrqSet.trigger(index)) == "EINVAL"  # nothing to signal
