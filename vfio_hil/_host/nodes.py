"""Opening /dev nodes, with each errno turned into a hint."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vfio_hil._errors import VfioHilError
from vfio_hil._host import hints
from vfio_hil._host.paths import HostPaths

__all__ = ["Opened", "close_all", "open_node"]


@dataclass(frozen=True)
class Opened:
    """A device fd and the fds that keep it usable, closed after it in order."""

    device_fd: int
    backing_fds: tuple[int, ...]
    iommu: str  # "group", "noiommu" or "cdev"


def open_node(
    path: Path,
    paths: HostPaths,
    *,
    what: str,
    missing_hint: str,
    noiommu: bool = False,
    busy_with: Sequence[Path] = (),
) -> int:
    """``open(path, O_RDWR | O_CLOEXEC)`` or a VfioHilError that says what to do.

    ``busy_with`` lists other nodes whose holders also explain an EBUSY (a
    device's cdev is busy while its group node is open elsewhere).
    """
    try:
        return os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise _explain(exc, path, paths, what, missing_hint, noiommu, busy_with) from exc


def _explain(
    exc: OSError,
    path: Path,
    paths: HostPaths,
    what: str,
    missing_hint: str,
    noiommu: bool,
    busy_with: Sequence[Path],
) -> VfioHilError:
    if exc.errno == errno.ENOENT:
        return hints.node_missing(path, missing_hint)
    if exc.errno == errno.EACCES or (exc.errno == errno.EPERM and not noiommu):
        return hints.permission_denied(path)
    if exc.errno == errno.EPERM:
        return hints.permission_denied(path, noiommu=True)
    if exc.errno == errno.EBUSY:
        return hints.busy([path, *busy_with], paths.proc, what)
    return hints.open_failed(path, exc)


def close_all(fds: Sequence[int]) -> None:
    """Close each fd in order; one failing close does not leak the others."""
    for fd in fds:
        with contextlib.suppress(OSError):  # EBADF: already closed; stay idempotent
            os.close(fd)
