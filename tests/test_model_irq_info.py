"""GET_IRQ_INFO, and the facts observed on real kernels (issue 2)."""

from __future__ import annotations

import pytest

from vfio_hil import IrqIndex, SimDevice, VfioError

# (flags, count) per index as read from Debian 6.1 with QEMU's devices.
EDU_6_1 = {0: (0x7, 1), 1: (0x9, 1), 2: (0x9, 0), 4: (0x9, 1)}
VIRTIO_6_1 = {0: (0x7, 1), 1: (0x9, 0), 2: (0x9, 64), 3: (0x9, 1), 4: (0x9, 1)}


def table(dev: SimDevice) -> dict[int, tuple[int, int]]:
    out = {}
    for index in IrqIndex:
        try:
            info = dev.irq_info(index)
        except VfioError:
            continue
        out[int(index)] = (int(info.flags), info.count)
    return out


def test_edu_on_6_1_matches_the_real_device() -> None:
    with SimDevice.edu(kernel="6.1") as dev:
        assert table(dev) == EDU_6_1
        with pytest.raises(VfioError) as err:
            dev.irq_info(IrqIndex.ERR)  # not PCIe
        assert err.value.errno == 22


def test_virtio_on_6_1_matches_the_real_device() -> None:
    with SimDevice.virtio_msix(kernel="6.1") as dev:
        assert table(dev) == VIRTIO_6_1


def test_virtio_on_6_12_clears_noresize_for_dynamic_msix() -> None:
    with SimDevice.virtio_msix(kernel="6.12") as dev:
        assert table(dev)[2] == (0x1, 64)


def test_err_info_on_conventional_pci_from_7_3() -> None:
    with SimDevice.edu(kernel="7.3") as dev:
        assert table(dev)[3] == (0x9, 1)


@pytest.mark.parametrize("index", [5, 6, 0xFFFFFFFF])
def test_index_past_num_irqs_is_einval(index: int) -> None:
    with SimDevice.edu() as dev, pytest.raises(VfioError) as err:
        dev.irq_info(index)
    assert err.value.errno == 22


def test_device_info_reports_five_irqs_and_nine_regions() -> None:
    with SimDevice.virtio_msix() as dev:
        info = dev.info()
        assert (info.num_irqs, info.num_regions) == (5, 9)
        assert info.flags & 2  # VFIO_DEVICE_FLAGS_PCI


def test_reset_fails_with_einval_when_the_function_cannot_reset() -> None:
    with SimDevice.edu() as dev, pytest.raises(VfioError) as err:
        dev.reset()
    assert err.value.errno == 22


def test_closed_device_refuses_ioctls() -> None:
    dev = SimDevice.edu()
    dev.close()
    with pytest.raises(VfioError):
        dev.irq_info(0)
