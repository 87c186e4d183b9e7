"""Behaviour that differs between kernels: the device must answer as its kernel's model."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vfio_hil import Device, EventFd, IrqIndex, IrqSet
from vfio_hil._lockstep.mirror import ModelMirror
from vfio_hil.suite._helpers import count_of, outcome, with_irq

MakeFds = Callable[[int], list[EventFd]]
MSI_KINDS = [with_irq(IrqIndex.MSI, 2), with_irq(IrqIndex.MSIX, 2)]


@pytest.mark.parametrize("index", MSI_KINDS)
def test_loopback_past_the_enabled_vectors(
    vfio_device: Device, vfio_model: ModelMirror, index: IrqIndex, eventfds: MakeFds
) -> None:
    """6.1 checks the range against the vectors enabled; 6.5 and later skip them."""
    (efd,) = eventfds(1)
    assert outcome(vfio_device, IrqSet.eventfds(index, 0, [efd])) == 0
    got = outcome(vfio_device, IrqSet.trigger(index, 0, count_of(vfio_device, index)))
    assert got == vfio_model.last
    assert efd.read() == vfio_model.take(efd)


@pytest.mark.parametrize("index", MSI_KINDS)
def test_eventfd_count_zero_while_disabled(
    vfio_device: Device, vfio_model: ModelMirror, index: IrqIndex
) -> None:
    """start=0 is ERANGE everywhere; start>0 is EINVAL on 6.1 and enables the index on 6.5+."""
    assert outcome(vfio_device, IrqSet.raw(0x24, index, 0, 0)) == "ERANGE"
    got = outcome(vfio_device, IrqSet.raw(0x24, index, 1, 0))
    assert got == vfio_model.last
    # Enabled (6.5+) means the disable succeeds; still disabled (6.1) means EINVAL.
    assert outcome(vfio_device, IrqSet.disable(index)) == (0 if got == 0 else "EINVAL")


@pytest.mark.parametrize("index", [with_irq(IrqIndex.ERR), with_irq(IrqIndex.REQ)])
def test_single_trigger_fd_below_minus_one(
    vfio_device: Device, vfio_model: ModelMirror, index: IrqIndex
) -> None:
    """No-op before 98693e0897f7 (RCU triggers), EINVAL after."""
    got = outcome(vfio_device, IrqSet.eventfds(index, 0, [-2]))
    assert got == vfio_model.last
