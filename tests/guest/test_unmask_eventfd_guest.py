"""The INTx unmask eventfd on the real kernel and on its SimDevice twin.

Two facts the differential runner cannot reach (it reads every eventfd after
every step, so none holds a count at registration, and it never unregisters
right after a write), checked on the real edu and on its twin alike.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.guest.conftest import lab_devices
from vfio_hil import Device, EventFd, IrqIndex, IrqSet, open_device
from vfio_hil._host.platform import running_kernel_profile
from vfio_hil._lockstep import twin_of

INTX = IrqIndex.INTX
_EDU = ("0x1234", "0x11e8")
_SOON_S = 0.2  # the re-fire runs on a workqueue (kernel) or a thread (sim)


def _edu_address() -> str:
    for address in lab_devices():
        sysfs = Path("/sys/bus/pci/devices") / address
        if ((sysfs / "vendor").read_text().strip(), (sysfs / "device").read_text().strip()) == _EDU:
            return address
    pytest.skip("no edu device in the lab")


def _count_at_registration(dev: Device) -> list[int]:
    assert dev.stimulus is not None
    trigger, unmask = EventFd(), EventFd()
    try:
        dev.set_irqs(IrqSet.eventfds(INTX, 0, [trigger]))
        dev.stimulus.raise_irq(1)
        time.sleep(_SOON_S)
        seen = [trigger.read()]
        unmask.write(1)
        dev.set_irqs(IrqSet.unmask_eventfd(INTX, unmask))
        time.sleep(_SOON_S)
        seen += [trigger.read(), unmask.read()]
        unmask.write(1)
        time.sleep(_SOON_S)
        seen += [trigger.read(), unmask.read()]
        unmask.write(1)
        unmask.write(1)
        dev.stimulus.clear_irq()
        dev.set_irqs(IrqSet.unmask_eventfd(INTX, -1))
        seen.append(unmask.read())
        return seen
    finally:
        dev.set_irqs(IrqSet.disable(INTX))
        trigger.close()
        unmask.close()


def test_unmask_eventfd_registration_and_writes_agree_with_the_twin() -> None:
    with open_device(_edu_address()) as real:
        twin = twin_of(real, running_kernel_profile())
        kernel = _count_at_registration(real)
    with twin:
        sim = _count_at_registration(twin)
    # raise fires; registration with a count unmasks once and keeps the count;
    # a write re-fires and is taken; writes then unregistering leave nothing.
    assert kernel == [1, 1, 1, 1, 0, 0]
    assert sim == kernel


def _shared_with_req(dev: Device) -> list[int]:
    assert dev.stimulus is not None
    intx, shared = EventFd(), EventFd()
    try:
        dev.set_irqs(IrqSet.eventfds(INTX, 0, [intx]))
        dev.set_irqs(IrqSet.unmask_eventfd(INTX, shared))
        dev.set_irqs(IrqSet.eventfds(IrqIndex.REQ, 0, [shared]))
        dev.stimulus.raise_irq(1)
        time.sleep(_SOON_S)
        seen = [intx.read()]
        dev.set_irqs(IrqSet.trigger(IrqIndex.REQ))  # loopback on the shared eventfd
        time.sleep(_SOON_S)
        seen += [shared.read(), intx.read()]
        dev.stimulus.clear_irq()
        return seen
    finally:
        dev.set_irqs(IrqSet.disable(IrqIndex.REQ))
        dev.set_irqs(IrqSet.disable(INTX))
        intx.close()
        shared.close()


def test_a_trigger_shared_with_the_unmask_eventfd_agrees_with_the_twin() -> None:
    with open_device(_edu_address()) as real:
        twin = twin_of(real, running_kernel_profile())
        kernel = _shared_with_req(real)
    with twin:
        sim = _shared_with_req(twin)
    # the raise fires and automasks; the REQ loopback's signal is taken by the
    # virqfd (reads 0), which unmasks INTx: the line is still up, so it re-fires.
    assert kernel == [1, 0, 1]
    assert sim == kernel
