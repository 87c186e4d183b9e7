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


def need(device: Device, index: int, at_least: int = 1) -> int:
    """The index's count, or skip the test saying what the device lacks."""
    try:
        count = device.irq_info(index).count
    except VfioError:
        count = 0
    if count < at_least:
        name = IrqIndex(index).name if index in IrqIndex._value2member_map_ else index
        pytest.skip(f"{device.name} has {count} {name} vector(s), needs {at_least}")
    return count
