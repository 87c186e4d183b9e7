"""Loopback (ACTION_TRIGGER with DATA_NONE / DATA_BOOL) on every trigger index."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vfio_hil import Device, EventFd, IrqIndex, IrqSet, read_counters
from vfio_hil.suite._helpers import count_of, outcome, with_irq

MakeFds = Callable[[int], list[EventFd]]
VECTORED = [with_irq(IrqIndex.INTX), with_irq(IrqIndex.MSI), with_irq(IrqIndex.MSIX)]


def enable(device: Device, index: int, fds: list[EventFd]) -> None:
    assert outcome(device, IrqSet.eventfds(index, 0, fds)) == 0


@pytest.mark.parametrize("index", VECTORED)
def test_data_none_signals_every_assigned_vector_once(
    vfio_device: Device, index: IrqIndex, eventfds: MakeFds
) -> None:
    n = min(count_of(vfio_device, index), 8)
    fds = eventfds(n)
    enable(vfio_device, index, fds)
    assert outcome(vfio_device, IrqSet.trigger(index, 0, n)) == 0
    assert read_counters(fds) == [1] * n
    assert read_counters(fds) == [0] * n  # a read resets the counter


@pytest.mark.parametrize("index", VECTORED)
def test_sparse_bool_signals_exactly_the_set_bytes(
    vfio_device: Device, index: IrqIndex, eventfds: MakeFds
) -> None:
    n = min(count_of(vfio_device, index), 8)
    fds = eventfds(n)
    enable(vfio_device, index, fds)
    pattern = [(k * 5 + 1) % 3 == 0 for k in range(n)]
    assert outcome(vfio_device, IrqSet.trigger_bool(index, 0, pattern)) == 0
    assert read_counters(fds) == [int(p) for p in pattern]


@pytest.mark.parametrize("index", [with_irq(IrqIndex.MSI, 3), with_irq(IrqIndex.MSIX, 3)])
def test_deassigned_vectors_are_skipped(
    vfio_device: Device, index: IrqIndex, eventfds: MakeFds
) -> None:
    n = min(count_of(vfio_device, index), 8)
    fds = eventfds(n)
    enable(vfio_device, index, fds)
    assert outcome(vfio_device, IrqSet.eventfds(index, 1, [-1])) == 0
    assert outcome(vfio_device, IrqSet.trigger(index, 0, n)) == 0
    assert read_counters(fds) == [1, 0] + [1] * (n - 2)


@pytest.mark.parametrize("index", [with_irq(IrqIndex.MSI, 2), with_irq(IrqIndex.MSIX, 2)])
def test_rebind_moves_the_signal(vfio_device: Device, index: IrqIndex, eventfds: MakeFds) -> None:
    old0, old1, new1 = eventfds(3)
    enable(vfio_device, index, [old0, old1])
    assert outcome(vfio_device, IrqSet.eventfds(index, 1, [new1])) == 0
    assert outcome(vfio_device, IrqSet.trigger(index, 0, 2)) == 0
    assert read_counters([old0, old1, new1]) == [1, 0, 1]


@pytest.mark.parametrize("index", VECTORED)
def test_disable_stops_loopback(vfio_device: Device, index: IrqIndex, eventfds: MakeFds) -> None:
    fds = eventfds(1)
    enable(vfio_device, index, fds)
    assert outcome(vfio_device, IrqSet.disable(index)) == 0
    assert outcome(vfio_device, IrqSet.trigger(index, 0, 1)) == "EINVAL"
    assert read_counters(fds) == [0]


@pytest.mark.parametrize("index", [with_irq(IrqIndex.ERR), with_irq(IrqIndex.REQ)])
def test_err_req_loopback(vfio_device: Device, index: IrqIndex, eventfds: MakeFds) -> None:
    (efd,) = eventfds(1)
    assert outcome(vfio_device, IrqSet.eventfds(index, 0, [efd])) == 0
    assert outcome(vfio_device, IrqSet.trigger(index)) == 0
    assert outcome(vfio_device, IrqSet.trigger_bool(index, 0, [0])) == 0
    assert efd.read() == 1
    assert outcome(vfio_device, IrqSet.eventfds(index, 0, [-1])) == 0
    assert outcome(vfio_device, IrqSet.trigger(index)) == "EINVAL"  # nothing to signal
