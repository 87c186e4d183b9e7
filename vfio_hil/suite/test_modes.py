"""One vector kind at a time: switching needs an explicit disable."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from vfio_hil import Device, EventFd, IrqIndex, IrqSet
from vfio_hil.suite._helpers import need, outcome

KINDS = [IrqIndex.INTX, IrqIndex.MSI, IrqIndex.MSIX]
PAIRS = [(a, b) for a, b in itertools.permutations(KINDS, 2)]


@pytest.mark.parametrize(("first", "second"), PAIRS, ids=lambda i: i.name)
def test_switching_kinds_needs_a_disable(
    device: Device, first: IrqIndex, second: IrqIndex, eventfds: Callable[[int], list[EventFd]]
) -> None:
    need(device, first)
    need(device, second)
    a, b = eventfds(2)
    assert outcome(device, IrqSet.eventfds(first, 0, [a])) == 0
    assert outcome(device, IrqSet.eventfds(second, 0, [b])) == "EINVAL"
    assert outcome(device, IrqSet.disable(second)) == "EINVAL"
    assert outcome(device, IrqSet.disable(first)) == 0
    assert outcome(device, IrqSet.eventfds(second, 0, [b])) == 0
    assert outcome(device, IrqSet.trigger(second, 0, 1)) == 0
    assert (a.read(), b.read()) == (0, 1)
