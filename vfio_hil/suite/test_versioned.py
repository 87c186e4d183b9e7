"""Behaviour that differs between kernels: the device must match its kernel's model."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vfio_hil import Device, EventFd, IrqIndex, IrqSet, SimDevice
from vfio_hil.suite._helpers import need, outcome


def both(device: Device, model: SimDevice, request: IrqSet) -> tuple[object, object]:
    return outcome(device, request), outcome(model, request)


@pytest.mark.parametrize("index", [IrqIndex.MSI, IrqIndex.MSIX], ids=lambda i: i.name)
def test_loopback_past_the_enabled_vectors(
    device: Device, model: SimDevice, index: IrqIndex, eventfds: Callable[[int], list[EventFd]]
) -> None:
    """6.1 checks the range against the vectors enabled; 6.5 and later skip them."""
    n = need(device, index, 2)
    fds = eventfds(1)
    for dev in (device, model):
        assert outcome(dev, IrqSet.eventfds(index, 0, fds)) == 0
    got, expected = both(device, model, IrqSet.trigger(index, 0, n))
    assert got == expected
    assert fds[0].read() == (2 if expected == 0 else 0)  # both sides signalled it


@pytest.mark.parametrize("index", [IrqIndex.MSI, IrqIndex.MSIX], ids=lambda i: i.name)
def test_eventfd_count_zero_while_disabled(
    device: Device, model: SimDevice, index: IrqIndex
) -> None:
    """start=0 is ERANGE everywhere; start>0 is EINVAL on 6.1 and enables the index on 6.5+."""
    need(device, index, 2)
    assert both(device, model, IrqSet.raw(0x24, index, 0, 0)) == ("ERANGE", "ERANGE")
    got, expected = both(device, model, IrqSet.raw(0x24, index, 1, 0))
    assert got == expected
    # Enabled (6.5+) means the disable succeeds; still disabled (6.1) means EINVAL.
    disabled = (0, 0) if expected == 0 else ("EINVAL", "EINVAL")
    assert both(device, model, IrqSet.disable(index)) == disabled


@pytest.mark.parametrize("index", [IrqIndex.ERR, IrqIndex.REQ], ids=lambda i: i.name)
def test_single_trigger_fd_below_minus_one(
    device: Device, model: SimDevice, index: IrqIndex
) -> None:
    """No-op before 98693e0897f7 (RCU triggers), EINVAL after."""
    need(device, index)
    got, expected = both(device, model, IrqSet.eventfds(index, 0, [-2]))
    assert got == expected
