"""ERR and REQ: single triggers, independent of the active IRQ type (spec 7.5)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests._outcome import answer, closed_fd
from vfio_hil import EventFd, IrqIndex, IrqSet, SimDevice

ERR, REQ = IrqIndex.ERR, IrqIndex.REQ
MakeFds = Callable[[int], list[EventFd]]


@pytest.fixture(params=["6.1", "6.12", "7.3"])
def kernel(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("index", [ERR, REQ])
def test_set_signal_and_release(kernel: str, index: int, make_eventfds: MakeFds) -> None:
    (efd,) = make_eventfds(1)
    with SimDevice.virtio_msix(kernel=kernel) as dev:
        assert answer(dev, IrqSet.trigger(index)) == "EINVAL"  # NONE with no trigger
        assert answer(dev, IrqSet.trigger_bool(index, 0, [1])) == 0  # BOOL: silent
        assert answer(dev, IrqSet.eventfds(index, 0, [efd])) == 0
        assert answer(dev, IrqSet.trigger(index)) == 0
        assert answer(dev, IrqSet.trigger_bool(index, 0, [1])) == 0
        assert answer(dev, IrqSet.trigger_bool(index, 0, [0])) == 0
        assert efd.read() == 2
        assert answer(dev, IrqSet.disable(index)) == 0  # NONE count 0 releases it
        assert answer(dev, IrqSet.trigger(index)) == "EINVAL"
        assert answer(dev, IrqSet.disable(index)) == "EINVAL"


@pytest.mark.parametrize("index", [ERR, REQ])
def test_count_zero_bool_or_eventfd_is_einval(kernel: str, index: int) -> None:
    with SimDevice.virtio_msix(kernel=kernel) as dev:
        assert answer(dev, IrqSet.trigger_bool(index, 0, [])) == "EINVAL"
        assert answer(dev, IrqSet.eventfds(index, 0, [])) == "EINVAL"


@pytest.mark.parametrize("index", [ERR, REQ])
def test_failed_replace_keeps_the_old_trigger(
    kernel: str, index: int, make_eventfds: MakeFds
) -> None:
    (efd,) = make_eventfds(1)
    with SimDevice.virtio_msix(kernel=kernel) as dev:
        dev.set_irqs(IrqSet.eventfds(index, 0, [efd]))
        assert answer(dev, IrqSet.eventfds(index, 0, [closed_fd()])) == "EBADF"
        with open("/dev/null") as not_eventfd:
            assert answer(dev, IrqSet.eventfds(index, 0, [not_eventfd.fileno()])) == "EINVAL"
        dev.set_irqs(IrqSet.trigger(index))
        assert efd.read() == 1


@pytest.mark.parametrize(
    ("kernel_", "expected"), [("6.1", 0), ("6.12", "EINVAL"), ("7.3", "EINVAL")]
)
@pytest.mark.parametrize("index", [ERR, REQ])
def test_fd_below_minus_one(kernel_: str, expected: object, index: int) -> None:
    # 98693e0897f7 (RCU triggers) made fd <= -2 EINVAL; 6.1 still ignores it.
    with SimDevice.virtio_msix(kernel=kernel_) as dev:
        assert answer(dev, IrqSet.eventfds(index, 0, [-2])) == expected


@pytest.mark.parametrize("index", [ERR, REQ])
def test_mask_and_unmask_are_enotty(kernel: str, index: int) -> None:
    with SimDevice.virtio_msix(kernel=kernel) as dev:
        assert answer(dev, IrqSet.mask(index)) == "ENOTTY"
        assert answer(dev, IrqSet.unmask(index)) == "ENOTTY"


def test_triggers_are_independent_of_the_irq_type(kernel: str, make_eventfds: MakeFds) -> None:
    req, intx = make_eventfds(2)
    with SimDevice.virtio_msix(kernel=kernel) as dev:
        dev.set_irqs(IrqSet.eventfds(REQ, 0, [req]))
        dev.set_irqs(IrqSet.eventfds(IrqIndex.INTX, 0, [intx]))
        dev.set_irqs(IrqSet.disable(IrqIndex.INTX))
        dev.set_irqs(IrqSet.trigger(REQ))
        assert req.read() == 1


def test_close_releases_err_and_req(kernel: str, make_eventfds: MakeFds) -> None:
    (efd,) = make_eventfds(1)
    dev = SimDevice.virtio_msix(kernel=kernel)
    dev.set_irqs(IrqSet.eventfds(ERR, 0, [efd]))
    dev.reopen()
    assert answer(dev, IrqSet.trigger(ERR)) == "EINVAL"
    dev.close()


@pytest.mark.parametrize(
    ("kernel_", "expected"), [("6.1", "EINVAL"), ("7.2", "EINVAL"), ("7.3", 0)]
)
def test_err_on_conventional_pci(kernel_: str, expected: object, make_eventfds: MakeFds) -> None:
    # 4e3c1fc8abcb (7.3) removed the PCIe check for the ERR index.
    with SimDevice.edu(kernel=kernel_) as dev:
        assert answer(dev, IrqSet.eventfds(ERR, 0, make_eventfds(1))) == expected
