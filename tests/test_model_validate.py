"""vfio_set_irqs_validate_and_prepare(): the checks, in the kernel's order (spec section 4)."""

from __future__ import annotations

import pytest

from tests._outcome import answer
from vfio_hil import IrqIndex, IrqSet, SimDevice
from vfio_hil._model.validate import set_irqs_validate_and_prepare

NONE, BOOL, EVENTFD, MASK, UNMASK, TRIGGER = 1, 2, 4, 8, 16, 32
EINVAL = -22
U32 = 0xFFFFFFFF


@pytest.mark.parametrize(
    ("argsz", "flags", "index", "start", "count", "num_irqs", "expected"),
    [
        (19, TRIGGER | NONE, 2, 0, 1, 64, EINVAL),  # V1 argsz below the header
        (20, TRIGGER | NONE, 5, 0, 0, 64, EINVAL),  # V1 index past VFIO_PCI_NUM_IRQS
        (20, TRIGGER | NONE, 2, 0xFFFFFFFF, 0, 64, EINVAL),  # V1 count >= U32_MAX - start
        (20, TRIGGER | NONE, 2, 1, U32 - 1, 64, EINVAL),  # V1 start + count == U32_MAX
        (20, 0x40 | TRIGGER | NONE, 2, 0, 1, 64, EINVAL),  # V1 a bit outside 0x3f
        (20, TRIGGER | NONE, 2, 64, 0, 64, EINVAL),  # V2 start == num_irqs
        (20, TRIGGER | NONE, 2, 60, 5, 64, EINVAL),  # V2 start + count > num_irqs
        (20, TRIGGER | NONE, 1, 0, 0, 0, EINVAL),  # V2 an index with count 0 rejects all
        (20, TRIGGER, 2, 0, 1, 64, EINVAL),  # V3 no data type
        (20, TRIGGER | NONE | BOOL, 2, 0, 1, 64, EINVAL),  # V3 two data types
        (20, TRIGGER | 7, 2, 0, 1, 64, EINVAL),  # V3 all three
        (21, TRIGGER | EVENTFD, 2, 0, 1, 64, EINVAL),  # V4 argsz short of count * 4
        (22, TRIGGER | BOOL, 2, 0, 3, 64, EINVAL),  # V4 argsz short of count * 1
        (20, TRIGGER | NONE, 2, 63, 1, 64, 0),  # the last vector, no payload
        (28, TRIGGER | EVENTFD, 2, 0, 2, 64, 8),  # payload size count * 4
        (4096, TRIGGER | BOOL, 2, 0, 3, 64, 3),  # argsz has no upper bound
        (20, NONE, 2, 0, 1, 64, 0),  # no action bit passes here (ENOTTY later)
        (20, MASK | UNMASK | TRIGGER | NONE, 2, 0, 1, 64, 0),  # nor do three
        (20, TRIGGER | BOOL, 2, 5, 0, 64, 0),  # count 0 with any start < num_irqs
    ],
)
def test_validate_order_and_result(
    argsz: int, flags: int, index: int, start: int, count: int, num_irqs: int, expected: int
) -> None:
    got = set_irqs_validate_and_prepare(argsz, flags, index, start, count, num_irqs, 5)
    assert got == expected


@pytest.mark.parametrize("kernel", ["6.1", "6.12", "7.3"])
def test_range_checks_come_before_action_checks(kernel: str) -> None:
    # A bad range is EINVAL even when the action would be ENOTTY (MSI-X has no MASK).
    with SimDevice.virtio_msix(kernel=kernel) as dev:
        assert answer(dev, IrqSet.mask(IrqIndex.MSIX, 64, 1)) == "EINVAL"
        assert answer(dev, IrqSet.mask(IrqIndex.MSIX, 0, 1)) == "ENOTTY"
        assert answer(dev, IrqSet.raw(NONE, IrqIndex.MSIX, 0, 1)) == "ENOTTY"
        assert answer(dev, IrqSet.raw(MASK | TRIGGER | NONE, IrqIndex.MSIX, 0, 1)) == "ENOTTY"


@pytest.mark.parametrize("kernel", ["6.1", "6.12", "7.3"])
def test_unknown_index_is_einval(kernel: str) -> None:
    with SimDevice.edu(kernel=kernel) as dev:
        assert answer(dev, IrqSet.trigger(7, 0, 0)) == "EINVAL"
        assert answer(dev, IrqSet.raw(TRIGGER | NONE, 0xFFFFFFFF, 0, 0)) == "EINVAL"
