"""The errno of each class of invalid request (vfio_set_irqs_validate_and_prepare, dispatch)."""

from __future__ import annotations

import pytest

from vfio_hil import Device, IrqIndex, IrqSet
from vfio_hil.suite._helpers import count_of, outcome, with_irq

NONE, BOOL, EVENTFD, MASK, UNMASK, TRIGGER = 1, 2, 4, 8, 16, 32


def cases(n: int) -> list[tuple[str, int, int, int, int, str]]:
    """(name, flags, start, count, argsz, errno) valid for an index of n vectors."""
    return [
        ("bits outside 0x3f", 0x40 | TRIGGER | NONE, 0, 1, 20, "EINVAL"),
        ("no data type", TRIGGER, 0, 1, 20, "EINVAL"),
        ("two data types", TRIGGER | NONE | BOOL, 0, 1, 21, "EINVAL"),
        ("start at the count", TRIGGER | NONE, n, 0, 20, "EINVAL"),
        ("start + count past the count", TRIGGER | NONE, n - 1, 2, 20, "EINVAL"),
        ("start near 2**32", TRIGGER | NONE, 0xFFFFFFFF, 2, 20, "EINVAL"),
        ("start + count overflows", TRIGGER | NONE, 1, 0xFFFFFFFF, 20, "EINVAL"),
        ("argsz below the header", TRIGGER | NONE, 0, 1, 19, "EINVAL"),
        ("argsz short of the payload", TRIGGER | EVENTFD, 0, 1, 23, "EINVAL"),
        ("no action", NONE, 0, 1, 20, "ENOTTY"),
        ("two actions", MASK | TRIGGER | NONE, 0, 1, 20, "ENOTTY"),
    ]


@pytest.mark.parametrize("index", [with_irq(i) for i in IrqIndex])
@pytest.mark.parametrize("case", range(len(cases(1))), ids=[c[0] for c in cases(1)])
def test_invalid_request_errno(vfio_device: Device, index: IrqIndex, case: int) -> None:
    _, flags, start, count, argsz, errno = cases(count_of(vfio_device, index))[case]
    request = IrqSet.raw(flags, index, start, count, b"", argsz=argsz)
    assert outcome(vfio_device, request) == errno


@pytest.mark.parametrize("index", [with_irq(i) for i in list(IrqIndex)[1:]])
def test_mask_and_unmask_are_intx_only(vfio_device: Device, index: IrqIndex) -> None:
    assert outcome(vfio_device, IrqSet.mask(index)) == "ENOTTY"
    assert outcome(vfio_device, IrqSet.unmask(index)) == "ENOTTY"


def test_index_past_the_last_is_einval(vfio_device: Device) -> None:
    assert outcome(vfio_device, IrqSet.trigger(5, 0, 0)) == "EINVAL"


@pytest.mark.vfio_irq(IrqIndex.INTX)
def test_intx_mask_with_an_eventfd_is_enotty(vfio_device: Device) -> None:
    assert outcome(vfio_device, IrqSet.eventfds(IrqIndex.INTX, 0, [-1])) == 0
    minus_one = (-1).to_bytes(4, "little", signed=True)
    request = IrqSet.raw(MASK | EVENTFD, IrqIndex.INTX, 0, 1, minus_one)
    assert outcome(vfio_device, request) == "ENOTTY"
