"""How tests phrase a device's answer: the return value, or the errno's name."""

from __future__ import annotations

from vfio_hil import Device, IrqSet, VfioError, errno_name


def answer(device: Device, request: IrqSet) -> int | str:
    """``device.set_irqs(request)``'s return value, or e.g. ``"EINVAL"``."""
    try:
        return device.set_irqs(request)
    except VfioError as err:
        return errno_name(err.errno)


def closed_fd() -> int:
    """A descriptor number that is not open and that nothing will soon reuse.

    (A number freed by close() is the next one open() hands out, so a test
    that wants EBADF must not take a recently closed one.)
    """
    import fcntl
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    number = min(soft, 1 << 20) - 1
    try:
        fcntl.fcntl(number, fcntl.F_GETFD)
    except OSError:
        return number
    raise RuntimeError(f"fd {number} is open; cannot find a closed descriptor number")
