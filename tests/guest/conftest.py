"""Tests in this folder run inside the lab's guest, against its vfio-pci devices.

Outside the lab they skip: ``vfio-hil lab run`` (or ``pytest tests/lab``)
boots a kernel and runs them there.
"""

from __future__ import annotations

import os

import pytest

from vfio_hil._targets import env_list


def lab_devices() -> list[str]:
    return env_list("VFIO_HIL_DEVICES") or []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if lab_devices():
        return
    skip = pytest.mark.skip(
        reason="needs devices bound to vfio-pci (VFIO_HIL_DEVICES); "
        "these run inside the lab: vfio-hil lab run -- pytest tests/guest"
    )
    for item in items:
        if "tests/guest/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(skip)
