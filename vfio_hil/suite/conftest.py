"""Fixtures for the conformance suite: one device per target, cleaned after use."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from vfio_hil import Device, EventFd, IrqIndex, IrqSet, SimDevice, VfioError
from vfio_hil._diff.twin import sim_twin
from vfio_hil._targets import Target, targets_from_env


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" in metafunc.fixturenames:
        targets = targets_from_env()
        metafunc.parametrize("target", targets, ids=[t.spec for t in targets], scope="session")


@pytest.fixture
def device(target: Target) -> Iterator[Device]:
    """The target, opened for this test and left with every index disabled."""
    dev = target.open()
    try:
        yield dev
    finally:
        for index in IrqIndex:
            with contextlib.suppress(VfioError):  # EINVAL: that index was not enabled
                dev.set_irqs(IrqSet.disable(index))
        dev.close()


@pytest.fixture
def model(device: Device) -> Iterator[SimDevice]:
    """The reference model of this device on the running kernel (or the sim's own)."""
    twin = device_twin(device)
    yield twin
    twin.close()


def device_twin(device: Device) -> SimDevice:
    if isinstance(device, SimDevice):
        return SimDevice(device.function, kernel=device.profile, name=f"model:{device.name}")
    return sim_twin(device)


@pytest.fixture
def eventfds() -> Iterator[Callable[[int], list[EventFd]]]:
    made: list[EventFd] = []

    def make(n: int) -> list[EventFd]:
        new = [EventFd() for _ in range(n)]
        made.extend(new)
        return new

    yield make
    for efd in made:
        efd.close()


def count_of(device: Device, index: int) -> int:
    try:
        return device.irq_info(index).count
    except VfioError:
        return 0
