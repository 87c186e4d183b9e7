"""Assertions in the domain's words, with failure messages that show counters."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from vfio_hil._errors import VfioError, errno_name
from vfio_hil._eventfd import EventFd, eventfd_list
from vfio_hil._irq import _field

__all__ = ["assert_quiet", "assert_signaled", "expect_errno"]

_U64 = 2**64 - 1  # an eventfd counter


def _table(expected: Sequence[int], got: Sequence[int]) -> str:
    rows = [
        f"  eventfd {i}: expected {e}, read {g}{'' if e == g else '   <--'}"
        for i, (e, g) in enumerate(zip(expected, got, strict=True))
    ]
    return "\n".join(rows)


def assert_signaled(
    fds: Sequence[EventFd], expected: Mapping[int, int], request: object = None
) -> None:
    """Read every eventfd; those named in ``expected`` must read that count, the rest 0.

    ``expected`` maps positions in ``fds`` (0 .. len(fds) - 1) to counts; a
    key that names no eventfd is an error, not an expectation dropped.
    """
    fds = eventfd_list(fds)  # checked before any is read: a read resets a counter
    want = _wanted(expected, len(fds))
    got = [efd.read() for efd in fds]
    if got != want:
        after = f" after {request!r}" if request is not None else ""
        raise AssertionError(f"eventfd counters{after}:\n{_table(want, got)}")


def _wanted(expected: object, n: int) -> list[int]:
    """The count each of n eventfds must read, from ``expected``, checked."""
    if not isinstance(expected, Mapping):
        raise TypeError(
            "expected must be a mapping of eventfd position to count ({1: 1}: eventfd 1 "
            f"signalled once), not {type(expected).__name__} {expected!r}"
        )
    want = [0] * n
    for key, count in expected.items():
        if not isinstance(key, int) or isinstance(key, bool):
            raise TypeError(
                f"expected key {key!r} must be an eventfd's position in fds (an int), "
                f"not {type(key).__name__}"
            )
        if not 0 <= key < n:
            raise ValueError(
                f"expected names eventfd {key}, but fds has {n}: positions 0..{n - 1}"
                if n
                else f"expected names eventfd {key}, but fds is empty"
            )
        want[key] = _field(f"expected[{key}]", count, 0, _U64)
    return want


def assert_quiet(fds: Sequence[EventFd], request: object = None) -> None:
    """No eventfd was signalled."""
    assert_signaled(fds, {}, request)


@contextmanager
def expect_errno(code: int) -> Iterator[None]:
    """The block must raise VfioError with errno ``code`` (``errno.EINVAL``)."""
    if not isinstance(code, int) or isinstance(code, bool):
        raise TypeError(
            "expect_errno takes an errno number such as errno.EINVAL, "
            f"not {type(code).__name__} {code!r}"
        )
    if code <= 0:  # VfioError.errno is positive: -22 would never match
        raise ValueError(f"expect_errno({code}): an errno number is positive (errno.EINVAL is 22)")
    try:
        yield
    except VfioError as err:
        if err.errno != code:
            raise AssertionError(
                f"expected {errno_name(code)}, got {errno_name(err.errno or 0)}: {err}"
            ) from err
        return
    raise AssertionError(f"expected {errno_name(code)}, but the request succeeded")
