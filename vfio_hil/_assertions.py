"""Assertions in the domain's words, with failure messages that show counters."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from vfio_hil._errors import VfioError, errno_name
from vfio_hil._eventfd import EventFd

__all__ = ["assert_quiet", "assert_signaled", "expect_errno"]


def _table(expected: Sequence[int], got: Sequence[int]) -> str:
    rows = [
        f"  eventfd {i}: expected {e}, read {g}{'' if e == g else '   <--'}"
        for i, (e, g) in enumerate(zip(expected, got, strict=True))
    ]
    return "\n".join(rows)


def assert_signaled(
    fds: Sequence[EventFd], expected: Mapping[int, int], request: object = None
) -> None:
    """Read every eventfd; those named in ``expected`` must read that count, the rest 0."""
    got = [efd.read() for efd in fds]
    want = [expected.get(i, 0) for i in range(len(fds))]
    if got != want:
        after = f" after {request!r}" if request is not None else ""
        raise AssertionError(f"eventfd counters{after}:\n{_table(want, got)}")


def assert_quiet(fds: Sequence[EventFd], request: object = None) -> None:
    """No eventfd was signalled."""
    assert_signaled(fds, {}, request)


@contextmanager
def expect_errno(code: int) -> Iterator[None]:
    """The block must raise VfioError with errno ``code``."""
    try:
        yield
    except VfioError as err:
        if err.errno != code:
            raise AssertionError(
                f"expected {errno_name(code)}, got {errno_name(err.errno or 0)}: {err}"
            ) from err
        return
    raise AssertionError(f"expected {errno_name(code)}, but the request succeeded")
