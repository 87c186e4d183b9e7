"""INTx mask, unmask, automask and re-fire, with interrupts the device raises."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vfio_hil import Device, EventFd, IrqIndex, IrqSet, Stimulus
from vfio_hil.suite._helpers import outcome

INTX = IrqIndex.INTX
# Device interrupts arrive after the MMIO write returns; wait this long at most.
IRQ_WAIT_S = 2.0
QUIET_S = 0.05

pytestmark = pytest.mark.vfio_irq(INTX)


@pytest.fixture
def intx(vfio_device: Device, eventfds: Callable[[int], list[EventFd]]) -> EventFd:
    (trigger,) = eventfds(1)
    assert outcome(vfio_device, IrqSet.eventfds(INTX, 0, [trigger])) == 0
    return trigger


def test_loopback_is_delivered_while_masked(vfio_device: Device, intx: EventFd) -> None:
    assert outcome(vfio_device, IrqSet.mask(INTX)) == 0
    assert outcome(vfio_device, IrqSet.trigger(INTX)) == 0
    assert intx.read() == 1
    assert outcome(vfio_device, IrqSet.unmask(INTX)) == 0
    assert intx.read() == 0


@pytest.mark.vfio_stimulus
def test_device_interrupt_automasks(intx: EventFd, vfio_stimulus: Stimulus) -> None:
    try:
        vfio_stimulus.raise_irq(1)
        assert intx.wait(IRQ_WAIT_S) == 1
        vfio_stimulus.raise_irq(2)
        assert intx.wait(QUIET_S) == 0  # automasked: nothing more
    finally:
        vfio_stimulus.clear_irq()


@pytest.mark.vfio_stimulus
def test_unmask_refires_while_the_device_still_asserts(
    vfio_device: Device, intx: EventFd, vfio_stimulus: Stimulus
) -> None:
    try:
        vfio_stimulus.raise_irq(1)
        assert intx.wait(IRQ_WAIT_S) == 1
        assert outcome(vfio_device, IrqSet.unmask(INTX)) == 0
        assert intx.wait(IRQ_WAIT_S) == 1
        vfio_stimulus.clear_irq()
        assert outcome(vfio_device, IrqSet.unmask(INTX)) == 0
        assert intx.wait(QUIET_S) == 0
    finally:
        vfio_stimulus.clear_irq()


@pytest.mark.vfio_stimulus
def test_masked_interrupt_waits_for_unmask(
    vfio_device: Device, intx: EventFd, vfio_stimulus: Stimulus
) -> None:
    try:
        assert outcome(vfio_device, IrqSet.mask(INTX)) == 0
        vfio_stimulus.raise_irq(1)
        assert intx.wait(QUIET_S) == 0
        assert outcome(vfio_device, IrqSet.unmask(INTX)) == 0
        assert intx.wait(IRQ_WAIT_S) == 1
    finally:
        vfio_stimulus.clear_irq()
