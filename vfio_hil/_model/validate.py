"""Generic SET_IRQS header checks, before vfio-pci looks at any state."""

from __future__ import annotations

import errno

from vfio_hil import _uapi as u

__all__ = ["data_size_of", "set_irqs_validate_and_prepare"]

_U32_MAX = 0xFFFFFFFF
_MINSZ = u.IRQ_SET_HEADER_SIZE
_SIZES = {u.VFIO_IRQ_SET_DATA_NONE: 0, u.VFIO_IRQ_SET_DATA_BOOL: 1, u.VFIO_IRQ_SET_DATA_EVENTFD: 4}
_LEGAL_FLAGS = u.VFIO_IRQ_SET_DATA_TYPE_MASK | u.VFIO_IRQ_SET_ACTION_TYPE_MASK


def data_size_of(flags: int) -> int | None:
    """Bytes per sub-index for the request's data type; None if not exactly one."""
    return _SIZES.get(flags & u.VFIO_IRQ_SET_DATA_TYPE_MASK)


def set_irqs_validate_and_prepare(
    argsz: int, flags: int, index: int, start: int, count: int, num_irqs: int, max_irq_type: int
) -> int:
    """The payload size to copy, or -EINVAL.  Action bits are not checked here."""
    # vfio_set_irqs_validate_and_prepare(): V1, one test for all four
    if (
        argsz < _MINSZ
        or index >= max_irq_type
        or count >= _U32_MAX - start
        or flags & ~_LEGAL_FLAGS
    ):
        return -errno.EINVAL
    # vfio_set_irqs_validate_and_prepare(): V2, the range must fit the index
    if start >= num_irqs or start + count > num_irqs:
        return -errno.EINVAL
    # vfio_set_irqs_validate_and_prepare(): V3, exactly one data type
    size = data_size_of(flags)
    if size is None:
        return -errno.EINVAL
    # vfio_set_irqs_validate_and_prepare(): V4, argsz must cover the payload
    if size and argsz - _MINSZ < count * size:
        return -errno.EINVAL
    return count * size
