"""The open path a run asked for is the one the kernel sees.

``VFIO_HIL_IOMMU`` (what ``--iommu``/``--vfio-iommu`` set in the lab) picks
the path; the kernel's own view says which was taken: the device fd of the
cdev path is the ``/dev/vfio/devices/vfioN`` file bound to an ``/dev/iommu``
fd, the group path's is an anonymous ``[vfio-device]`` inode next to a
``/dev/vfio/N`` group (``noiommu-N`` without an IOMMU) and the container.
With no choice made, a kernel that offers the cdev and /dev/iommu gets it
(``auto``), and a NOIOMMU device goes through its group.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from tests.guest.conftest import lab_devices
from vfio_hil import open_device


def _open_files() -> dict[int, str]:
    """This process's fds and what the kernel says each one is."""
    files = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the fd listdir itself used
            files[int(name)] = os.readlink(f"/proc/self/fd/{name}")
    return files


def _noiommu(address: str) -> bool:
    group = Path(f"/sys/bus/pci/devices/{address}/iommu_group").resolve().name
    return Path(f"/dev/vfio/noiommu-{group}").exists()


def _cdev_offered(address: str) -> bool:
    cdevs = list(Path(f"/sys/bus/pci/devices/{address}/vfio-dev").glob("vfio*"))
    return bool(cdevs) and Path("/dev/vfio/devices", cdevs[0].name).exists()


def _expected(address: str) -> str:
    asked = os.environ.get("VFIO_HIL_IOMMU") or "auto"
    if _noiommu(address):
        assert asked != "cdev", "this run asks a NOIOMMU device for its cdev"
        return "noiommu"
    if asked == "auto":
        return "cdev" if _cdev_offered(address) and Path("/dev/iommu").exists() else "group"
    return asked


@pytest.mark.parametrize("address", lab_devices() or ["none"])
def test_the_device_is_opened_by_the_path_asked_for(address: str) -> None:
    expected = _expected(address)
    before = _open_files()
    with open_device(address) as dev:
        assert dev.iommu == expected
        opened = {fd: f for fd, f in _open_files().items() if before.get(fd) != f}
        device_file = opened.pop(dev.fd)
        if expected == "cdev":
            assert device_file.startswith("/dev/vfio/devices/vfio"), device_file
            assert sorted(opened.values()) == ["/dev/iommu"]
        else:
            assert device_file == "anon_inode:[vfio-device]", device_file
            group = Path(f"/sys/bus/pci/devices/{address}/iommu_group").resolve().name
            node = f"noiommu-{group}" if expected == "noiommu" else group
            assert sorted(opened.values()) == sorted([f"/dev/vfio/{node}", "/dev/vfio/vfio"])
    assert _open_files().keys() <= before.keys(), "closing the device left an fd open"
