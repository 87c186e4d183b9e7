"""``vfio_model`` follows everything a test does through ``vfio_device``.

It is the device's twin (the lockstep engine's twin builder), so what the
test does to the device — requests, device-raised interrupts, DisINTx
writes, reopens — the model does too, and ``assert_matches`` compares the
counts the kernel would give.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

FOLLOWS = """
import struct

from vfio_hil import IrqIndex, IrqSet

def test_a_raise_is_mirrored(vfio_device, vfio_model, vfio_stimulus, eventfds):
    (efd,) = eventfds(1)
    vfio_device.set_irqs(IrqSet.eventfds(IrqIndex.INTX, 0, [efd]))
    vfio_stimulus.raise_irq(1)  # INTx asserts: one signal, then the line is masked
    vfio_model.assert_matches([efd])
    vfio_device.set_irqs(IrqSet.unmask(IrqIndex.INTX, 0, 1))  # still up: fires again
    vfio_model.assert_matches([efd])
    vfio_stimulus.clear_irq()
    vfio_device.set_irqs(IrqSet.unmask(IrqIndex.INTX, 0, 1))
    vfio_model.assert_matches([efd])

def test_the_model_counts_what_the_device_signals(vfio_device, vfio_model, vfio_stimulus, eventfds):
    (efd,) = eventfds(1)
    vfio_device.set_irqs(IrqSet.eventfds(IrqIndex.INTX, 0, [efd]))
    vfio_stimulus.raise_irq(1)
    assert vfio_model.take(efd) == 1
    assert efd.read() == 1

def test_a_disintx_write_is_mirrored(vfio_device, vfio_model, vfio_stimulus, eventfds):
    (efd,) = eventfds(1)
    vfio_device.set_irqs(IrqSet.eventfds(IrqIndex.INTX, 0, [efd]))
    cmd = struct.unpack("<H", vfio_device.read_region(7, 4, 2))[0]
    vfio_device.write_region(7, 4, struct.pack("<H", cmd | 0x400))  # DisINTx
    vfio_stimulus.raise_irq(1)  # the line is held off by DisINTx: nothing yet
    vfio_model.assert_matches([efd])
    vfio_device.write_region(7, 4, struct.pack("<H", cmd))
    vfio_model.assert_matches([efd])
"""


def test_the_model_follows_raises_and_config_writes(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(FOLLOWS)
    result = pytester.runpytest("--vfio-sim", "edu@6.1", "--vfio-sim", "edu@7.3")
    result.assert_outcomes(passed=6)


def test_a_wrong_model_expectation_is_reported(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from vfio_hil import IrqIndex, IrqSet

        def test_extra_signal(vfio_device, vfio_model, eventfds):
            (efd,) = eventfds(1)
            vfio_device.set_irqs(IrqSet.eventfds(IrqIndex.MSIX, 0, [efd]))
            efd.write(1)  # not through the device: the model cannot know
            vfio_model.assert_matches([efd])
        """
    )
    result = pytester.runpytest("--vfio-sim", "virtio_msix")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*eventfd 0: model expects 0, read 1*"])
