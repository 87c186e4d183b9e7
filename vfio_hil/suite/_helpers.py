"""Small helpers the suite's checks share."""

from __future__ import annotations

import pytest

from vfio_hil import Device, IrqIndex, IrqSet, VfioError, errno_name


def outcome(device: Device, request: IrqSet) -> int | str:
    """The ioctl's return value, or the errno's name."""
    try:
        return device.set_irqs(request)
    except VfioError as err:
        return errno_name(err.errno or 0)


def count_of(device: Device, index: int) -> int:
    try:
        return device.irq_info(index).count
    except VfioError:
        return 0


def with_irq(index: IrqIndex, min_count: int = 1) -> object:
    """A parameter for ``index`` that runs only on targets with ``min_count`` vectors."""
    return pytest.param(index, marks=pytest.mark.vfio_irq(index, min_count), id=index.name)
