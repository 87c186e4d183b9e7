"""One vector kind at a time: switching needs an explicit disable."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from vfio_hil import Device, EventFd, IrqIndex, IrqSet
from vfio_hil.suite._helpers import outcome

KINDS = [IrqIndex.INTX, IrqIndex.MSI, IrqIndex.MSIX]
PAIRS = [
    pytest.param(
        a, b, marks=[pytest.mark.vfio_irq(a), pytest.mark.vfio_irq(b)], id=f"{a.name}-{b.name}"
    )
    for a, b in itertools.permutations(KINDS, 2)
]


@pytest.mark.parametrize(("first", "second"), PAIRS)
def test_switching_kinds_needs_a_disable(
    vfio_device: Device,
    first: IrqIndex,
    second: IrqIndex,
    eventfds: Callable[[int], list[EventFd]],
) -> None:
    a, b = eventfds(2)
    assert outcome(vfio_device, IrqSet.eventfds(first, 0, [a])) == 0
    assert outcome(vfio_device, IrqSet.eventfds(second, 0, [b])) == "EINVAL"
    assert outcome(vfio_device, IrqSet.disable(second)) == "EINVAL"
    assert outcome(vfio_device, IrqSet.disable(first)) == 0
    assert outcome(vfio_device, IrqSet.eventfds(second, 0, [b])) == 0
    assert outcome(vfio_device, IrqSet.trigger(second, 0, 1)) == 0
    assert (a.read(), b.read()) == (0, 1)
