"""INTx mask, unmask, automask and re-fire, with interrupts the device raises."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vfio_hil import Device, EventFd, IrqIndex, IrqSet, Stimulus
from vfio_hil.suite._helpers import need, outcome

INTX = IrqIndex.INTX
# Device interrupts arrive after the MMIO write returns; wait this long at most.
IRQ_WAIT_S = 2.0
QUIET_S = 0.05


def stimulus_of(device: Device) -> Stimulus:
    if device.stimulus is None:
        pytest.skip(f"{device.name} cannot raise interrupts on demand (no stimulus)")
    return device.stimulus


@pytest.fixture
def intx(device: Device, eventfds: Callable[[int], list[EventFd]]) -> EventFd:
    need(device, INTX)
    (trigger,) = eventfds(1)
    assert outcome(device, IrqSet.eventfds(INTX, 0, [trigger])) == 0
    return trigger


def test_loopback_is_delivered_while_masked(device: Device, intx: EventFd) -> None:
    assert outcome(device, IrqSet.mask(INTX)) == 0
    assert outcome(device, IrqSet.trigger(INTX)) == 0
    assert intx.read() == 1
    assert outcome(device, IrqSet.unmask(INTX)) == 0
    assert intx.read() == 0


def test_device_interrupt_automasks(device: Device, intx: EventFd) -> None:
    stim = stimulus_of(device)
    try:
        stim.raise_irq(1)
        assert intx.wait(IRQ_WAIT_S) == 1
        stim.raise_irq(2)
        assert intx.wait(QUIET_S) == 0  # automasked: nothing more
    finally:
        stim.clear_irq()


def test_unmask_refires_while_the_device_still_asserts(device: Device, intx: EventFd) -> None:
    stim = stimulus_of(device)
    try:
        stim.raise_irq(1)
        assert intx.wait(IRQ_WAIT_S) == 1
        assert outcome(device, IrqSet.unmask(INTX)) == 0
        assert intx.wait(IRQ_WAIT_S) == 1
        stim.clear_irq()
        assert outcome(device, IrqSet.unmask(INTX)) == 0
        assert intx.wait(QUIET_S) == 0
    finally:
        stim.clear_irq()


def test_masked_interrupt_waits_for_unmask(device: Device, intx: EventFd) -> None:
    stim = stimulus_of(device)
    try:
        assert outcome(device, IrqSet.mask(INTX)) == 0
        stim.raise_irq(1)
        assert intx.wait(QUIET_S) == 0
        assert outcome(device, IrqSet.unmask(INTX)) == 0
        assert intx.wait(IRQ_WAIT_S) == 1
    finally:
        stim.clear_irq()
