"""The sysfs side of binding: one write(2) per change, and what the kernel shows.

Every sysfs write goes through ``_sysfs_write``, one write(2) that returns
after the kernel has acted on it.  That function is the whole kernel
interface: the tests wrap it with a small fake kernel over a sysfs tree in a
temporary directory, and everything else runs unchanged.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path

from vfio_hil._errors import VfioHilError, errno_name
from vfio_hil._host.paths import HostPaths
from vfio_hil._host.sysfs import PciDevice

_POLL_FIRST_S = 0.005
_POLL_MAX_S = 0.1


# --- sysfs ----------------------------------------------------------------------
def _sysfs_write(path: Path, text: str) -> None:
    """One write(2) to a sysfs attribute; the kernel has acted when it returns.

    Never creates a file: writing an attribute that does not exist fails, as
    it does in sysfs.
    """
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _write(path: Path, text: str) -> None:
    try:
        _sysfs_write(path, text)
    except OSError as exc:
        raise _write_failed(path, text, exc) from exc


def _write_failed(path: Path, text: str, exc: OSError) -> VfioHilError:
    code = exc.errno if exc.errno is not None else errno.EIO
    if code in (errno.EACCES, errno.EPERM):
        return VfioHilError(
            f"permission denied writing {path}",
            "binding a device to vfio-pci writes sysfs, which needs root: run as root"
            " (e.g. sudo); in a container, /sys must be writable (--privileged)",
        )
    if code == errno.EROFS:
        return VfioHilError(
            f"cannot write {path}: /sys is read-only (EROFS)",
            "run as root with /sys mounted read-write (a container needs --privileged)",
        )
    if code == errno.ENOENT:
        return VfioHilError(
            f"{path} does not exist",
            "the device or its driver went away meanwhile (hot-unplug, module unload);"
            " check `lspci -D` and `dmesg | tail`",
        )
    return VfioHilError(
        f"writing {text.strip()!r} to {path} failed: {errno_name(code)} ({os.strerror(code)})",
        "the kernel refused it: `dmesg | tail` says why",
    )


def _driver(paths: HostPaths, address: str) -> str | None:
    try:
        return os.path.basename(os.readlink(paths.device_dir(address) / "driver"))
    except OSError:
        return None


def _read_override(paths: HostPaths, address: str) -> str | None:
    """driver_override, None when unset (the kernel shows ``(null)``)."""
    path = paths.device_dir(address) / "driver_override"
    try:
        value = path.read_text().strip()
    except OSError as exc:
        raise VfioHilError(
            f"cannot read {path}: {exc.strerror or exc}",
            "driver_override needs Linux >= 3.16; bind the device by hand (docs/devices.md)",
        ) from exc
    return None if value in ("", "(null)") else value


def _probe_path(paths: HostPaths) -> Path:
    return paths.sys / "bus" / "pci" / "drivers_probe"


def _vfio_nodes(dev: PciDevice, paths: HostPaths) -> list[Path]:
    """The /dev nodes vfio-pci creates for ``dev``: group (or noiommu-group), cdev."""
    nodes = []
    if dev.iommu_group is not None:
        nodes += [paths.vfio / dev.iommu_group, paths.vfio / f"noiommu-{dev.iommu_group}"]
    if dev.vfio_cdev is not None:
        nodes.append(paths.vfio_cdevs / dev.vfio_cdev)
    return nodes


def _poll(done: Callable[[], bool], timeout: float) -> bool:
    """Call ``done`` until it is true or ``timeout`` seconds pass; its last answer."""
    deadline = time.monotonic() + timeout
    pause = _POLL_FIRST_S
    while not done():
        if time.monotonic() >= deadline:
            return done()
        time.sleep(pause)
        pause = min(pause * 2, _POLL_MAX_S)
    return True


def _noiommu_enabled(paths: HostPaths) -> bool:
    flag = paths.sys / "module" / "vfio" / "parameters" / "enable_unsafe_noiommu_mode"
    try:
        return flag.read_text().strip() in ("Y", "1")
    except OSError:
        return False
