"""The two kinds of failure vfio-hil reports.

``VfioError`` is an ioctl that the kernel (or the model) refused: its errno *is*
the observation under test, so it is kept exactly.  ``VfioHilError`` is a setup
problem (device not bound, group not viable, missing tool) and carries a hint
that says what to do about it.
"""

from __future__ import annotations

import errno as _errno
import os
from typing import Any


def errno_name(code: int) -> str:
    """``22`` -> ``"EINVAL"``; unknown numbers stay numeric."""
    return _errno.errorcode.get(code, str(code))


class VfioError(OSError):
    """An ioctl failed.  ``.errno`` is the kernel's errno, ``.request`` what was sent."""

    def __init__(self, code: int, operation: str, request: Any = None) -> None:
        super().__init__(code, os.strerror(code))
        self.operation = operation
        self.request = request

    def __str__(self) -> str:
        what = self.operation if self.request is None else f"{self.operation} {self.request!r}"
        code = self.errno or 0
        return f"{what} failed: {errno_name(code)} ({self.strerror})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.errno, self.operation, self.request))


class VfioHilError(Exception):
    """A setup problem, with a hint saying how to fix it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message
