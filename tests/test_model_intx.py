"""INTx: enable, swap, disable, mask, unmask, loopback (spec sections 7.1-7.3, 8, 9)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests._outcome import answer, closed_fd
from vfio_hil import (
    CountingEventfds,
    EventFd,
    IrqIndex,
    IrqSet,
    PciFunction,
    SimDevice,
    VfioPciModel,
    kernel_profile,
)

INTX = IrqIndex.INTX
KERNELS = ["6.1", "6.12", "7.2", "7.3"]
MakeFds = Callable[[int], list[EventFd]]


@pytest.fixture(params=KERNELS)
def edu(request: pytest.FixtureRequest) -> Iterator[SimDevice]:
    with SimDevice.edu(kernel=request.param) as dev:
        yield dev


def enable(dev: SimDevice, efd: EventFd | int) -> None:
    assert answer(dev, IrqSet.eventfds(INTX, 0, [efd])) == 0


# --- state N (nothing enabled): everything but enable is EINVAL -----------------------


@pytest.mark.parametrize(
    "request_",
    [
        IrqSet.mask(INTX),
        IrqSet.unmask(INTX),
        IrqSet.mask_bool(INTX, 0, [1]),
        IrqSet.unmask_eventfd(INTX, -1),
        IrqSet.trigger(INTX),
        IrqSet.trigger_bool(INTX, 0, [1]),
        IrqSet.disable(INTX),
        IrqSet.eventfds(INTX, 0, []),  # EVENTFD count 0
    ],
    ids=repr,
)
def test_intx_requests_while_disabled_are_einval(edu: SimDevice, request_: IrqSet) -> None:
    assert answer(edu, request_) == "EINVAL"


def test_mask_eventfd_is_enotty_even_while_disabled_it_is_einval(
    edu: SimDevice, make_eventfds: MakeFds
) -> None:
    (trigger,) = make_eventfds(1)
    mask_eventfd = IrqSet.raw(8 | 4, INTX, 0, 1, trigger.fd.to_bytes(4, "little"))
    assert answer(edu, mask_eventfd) == "EINVAL"  # is_intx() fails first
    enable(edu, trigger)
    assert answer(edu, mask_eventfd) == "ENOTTY"  # "XXX implement me"


# --- state E: enabled ---------------------------------------------------------------


def test_loopback_signals_the_trigger_once(edu: SimDevice, make_eventfds: MakeFds) -> None:
    (trigger,) = make_eventfds(1)
    enable(edu, trigger)
    assert answer(edu, IrqSet.trigger(INTX)) == 0
    assert trigger.read() == 1


def test_loopback_ignores_the_mask(edu: SimDevice, make_eventfds: MakeFds) -> None:
    (trigger,) = make_eventfds(1)
    enable(edu, trigger)
    assert answer(edu, IrqSet.mask(INTX)) == 0
    assert answer(edu, IrqSet.trigger(INTX)) == 0
    assert trigger.read() == 1


def test_bool_loopback_signals_only_when_the_byte_is_set(
    edu: SimDevice, make_eventfds: MakeFds
) -> None:
    (trigger,) = make_eventfds(1)
    enable(edu, trigger)
    assert answer(edu, IrqSet.trigger_bool(INTX, 0, [0])) == 0
    assert trigger.read() == 0
    assert answer(edu, IrqSet.trigger_bool(INTX, 0, [7])) == 0
    assert trigger.read() == 1


@pytest.mark.parametrize(
    "request_",
    [
        IrqSet.trigger(INTX, 0, 2),
        IrqSet.trigger_bool(INTX, 0, []),
        IrqSet.eventfds(INTX, 0, []),
        IrqSet.mask(INTX, 0, 0),
        IrqSet.unmask(INTX, 0, 0),
    ],
    ids=repr,
)
def test_intx_takes_exactly_one_subindex(
    edu: SimDevice, make_eventfds: MakeFds, request_: IrqSet
) -> None:
    enable(edu, make_eventfds(1)[0])
    assert answer(edu, request_) == "EINVAL"


def test_swap_moves_the_trigger(edu: SimDevice, make_eventfds: MakeFds) -> None:
    old, new = make_eventfds(2)
    enable(edu, old)
    enable(edu, new)
    assert answer(edu, IrqSet.trigger(INTX)) == 0
    assert (old.read(), new.read()) == (0, 1)


def test_failed_swap_keeps_the_old_trigger(edu: SimDevice, make_eventfds: MakeFds) -> None:
    old, _gone = make_eventfds(2)
    enable(edu, old)
    assert answer(edu, IrqSet.eventfds(INTX, 0, [closed_fd()])) == "EBADF"
    assert answer(edu, IrqSet.trigger(INTX)) == 0
    assert old.read() == 1


def test_enable_with_minus_one_leaves_intx_on_with_no_trigger(edu: SimDevice) -> None:
    enable(edu, -1)
    assert answer(edu, IrqSet.trigger(INTX)) == 0  # a loopback to nobody
    assert answer(edu, IrqSet.mask(INTX)) == 0  # and INTx is enabled
    assert answer(edu, IrqSet.disable(INTX)) == 0


def test_deassign_then_loopback_returns_zero(edu: SimDevice, make_eventfds: MakeFds) -> None:
    # CVE-2024-26812: this sequence oopsed before the persistent INTx handler.
    (trigger,) = make_eventfds(1)
    enable(edu, trigger)
    enable(edu, -1)
    assert answer(edu, IrqSet.trigger(INTX)) == 0
    assert trigger.read() == 0


def test_disable_then_everything_is_einval_again(edu: SimDevice, make_eventfds: MakeFds) -> None:
    (trigger,) = make_eventfds(1)
    enable(edu, trigger)
    assert answer(edu, IrqSet.disable(INTX)) == 0
    assert answer(edu, IrqSet.trigger(INTX)) == "EINVAL"
    assert answer(edu, IrqSet.disable(INTX)) == "EINVAL"
    assert trigger.read() == 0


def test_enable_with_a_non_eventfd_is_einval_and_a_closed_fd_ebadf(
    edu: SimDevice, make_eventfds: MakeFds
) -> None:
    with open("/dev/null") as not_eventfd:
        assert answer(edu, IrqSet.eventfds(INTX, 0, [not_eventfd.fileno()])) == "EINVAL"
    assert answer(edu, IrqSet.eventfds(INTX, 0, [closed_fd()])) == "EBADF"
    assert answer(edu, IrqSet.trigger(INTX)) == "EINVAL"  # still disabled


def test_unmask_of_a_quiet_line_signals_nothing(edu: SimDevice, make_eventfds: MakeFds) -> None:
    (trigger,) = make_eventfds(1)
    enable(edu, trigger)
    assert answer(edu, IrqSet.mask(INTX)) == 0
    assert answer(edu, IrqSet.unmask(INTX)) == 0
    assert answer(edu, IrqSet.unmask_bool(INTX, 0, [1])) == 0
    assert trigger.read() == 0


def test_unmask_eventfd_registration_rules(edu: SimDevice, make_eventfds: MakeFds) -> None:
    trigger, first, second = make_eventfds(3)
    enable(edu, trigger)
    assert answer(edu, IrqSet.unmask_eventfd(INTX, first)) == 0
    assert answer(edu, IrqSet.unmask_eventfd(INTX, second)) == "EBUSY"
    with open("/dev/null") as not_eventfd:
        # EINVAL is decided before EBUSY.
        assert answer(edu, IrqSet.unmask_eventfd(INTX, not_eventfd.fileno())) == "EINVAL"
    assert answer(edu, IrqSet.unmask_eventfd(INTX, -5)) == 0  # any negative unregisters
    assert answer(edu, IrqSet.unmask_eventfd(INTX, second)) == 0


def test_msi_cannot_be_enabled_while_intx_is(edu: SimDevice, make_eventfds: MakeFds) -> None:
    trigger, msi = make_eventfds(2)
    enable(edu, trigger)
    assert answer(edu, IrqSet.eventfds(IrqIndex.MSI, 0, [msi])) == "EINVAL"
    assert answer(edu, IrqSet.disable(IrqIndex.MSI)) == "EINVAL"


def test_intx_cannot_be_touched_while_msi_is_on(edu: SimDevice, make_eventfds: MakeFds) -> None:
    trigger, msi = make_eventfds(2)
    assert answer(edu, IrqSet.eventfds(IrqIndex.MSI, 0, [msi])) == 0
    assert answer(edu, IrqSet.eventfds(INTX, 0, [trigger])) == "EINVAL"
    assert answer(edu, IrqSet.mask(INTX)) == "EINVAL"
    assert answer(edu, IrqSet.disable(INTX)) == "EINVAL"


def test_no_intx_pin_rejects_every_intx_request() -> None:
    with SimDevice(intx_pin=False, msix_vectors=4, pcie=True) as dev:
        assert dev.irq_info(INTX).count == 0
        assert int(dev.irq_info(INTX).flags) == 0x7  # flags even with count 0
        assert answer(dev, IrqSet.eventfds(INTX, 0, [-1])) == "EINVAL"


# --- the virtual DisINTx bit (PCI_COMMAND bit 10) ------------------------------------


def write_command(dev: SimDevice, value: int) -> None:
    dev.write_region(7, 4, value.to_bytes(2, "little"))


def test_virq_disabled_drops_loopback(edu: SimDevice, make_eventfds: MakeFds) -> None:
    (trigger,) = make_eventfds(1)
    enable(edu, trigger)
    write_command(edu, 1 << 10)
    assert answer(edu, IrqSet.trigger(INTX)) == 0
    assert trigger.read() == 0
    write_command(edu, 0)
    assert answer(edu, IrqSet.trigger(INTX)) == 0
    assert trigger.read() == 1


def test_close_disables_intx_and_clears_virq_disabled(make_eventfds: MakeFds) -> None:
    (trigger,) = make_eventfds(1)
    dev = SimDevice.edu()
    enable(dev, trigger)
    write_command(dev, 1 << 10)
    dev.reopen()
    assert answer(dev, IrqSet.trigger(INTX)) == "EINVAL"
    enable(dev, trigger)
    assert answer(dev, IrqSet.trigger(INTX)) == 0
    assert trigger.read() == 1
    dev.close()


# --- before the 2024 hardening (6.1.0-6.1.83) ----------------------------------------


def test_pre_2024_failed_swap_destroys_the_old_trigger(make_eventfds: MakeFds) -> None:
    old, _gone = make_eventfds(2)
    with SimDevice.edu(kernel="6.1.80") as dev:
        enable(dev, old)
        assert answer(dev, IrqSet.eventfds(INTX, 0, [closed_fd()])) == "EBADF"
        assert dev.model.state.intx is not None
        assert dev.model.state.intx.trigger is None


def test_pre_2024_loopback_without_trigger_is_a_kernel_oops() -> None:
    from vfio_hil import KernelOops

    with SimDevice.edu(kernel="6.1.80") as dev:
        enable(dev, -1)
        with pytest.raises(KernelOops, match="CVE-2024-26812"):
            dev.set_irqs(IrqSet.trigger(INTX))


def test_a_signal_to_the_unmask_eventfd_is_taken_and_unmasks_in_the_model_too() -> None:
    """The pure model (CountingEventfds, what vfio_model mirrors with): REQ's
    trigger is also the INTx unmask eventfd, so a REQ loopback's signal is
    taken by the virqfd and clears the user's INTx mask (lab: 6.1.192)."""
    fds = CountingEventfds()
    model = VfioPciModel(PciFunction(intx_pin=True, pcie=True), kernel_profile("6.1"), fds)
    model.open_device()
    intx, shared = fds.open(), fds.open()
    for request in (
        IrqSet.eventfds(INTX, 0, [intx]),
        IrqSet.unmask_eventfd(INTX, shared),
        IrqSet.eventfds(IrqIndex.REQ, 0, [shared]),
        IrqSet.mask(INTX),
    ):
        assert model.ioctl_set_irqs(request.pack()) == 0
    assert model.state.intx is not None
    assert model.state.intx.masked
    assert model.ioctl_set_irqs(IrqSet.trigger(IrqIndex.REQ).pack()) == 0
    assert fds.read(shared) == 0
    assert not model.state.intx.masked
