"""The SimDevice presets of the lab's device kinds answer as the lab's devices did.

Expected values were measured in lab guests (``vfio-hil lab run --kernel K
--accel tcg --devices kinds``, QEMU 7.2.22), by a script that opened each bound
device with ``open_device`` and read GET_IRQ_INFO of every index, GET_INFO,
the interrupt pin and PCI_COMMAND through the config region right after the
open, and tried VFIO_DEVICE_RESET: on 6.1.0-57 (6.1.192), 6.12.118+deb13 and
7.2.13+deb14.  tests/guest/test_sim_presets_guest.py repeats the comparison
live in every lab run of the ``kinds`` preset.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from vfio_hil import _uapi as u
from vfio_hil._errors import VfioError
from vfio_hil._lockstep.twin import function_of, twin_of
from vfio_hil._targets import parse_target

# GET_IRQ_INFO (flags, count) for INTX, MSI, MSIX, ERR, REQ.
_BEFORE_DYN_MSIX = {
    "nvme_vf": ((0x7, 0), (0x9, 0), (0x9, 1), (0x9, 1), (0x9, 1)),
    "xhci_msi": ((0x7, 1), (0x9, 16), (0x9, 0), (0x9, 1), (0x9, 1)),
    "e1000e": ((0x7, 1), (0x9, 1), (0x9, 5), (0x9, 1), (0x9, 1)),
}
# From 6.5 an MSI-X index without NORESIZE (dynamic MSI-X): flags 0x1.
_DYN_MSIX = {
    "nvme_vf": ((0x7, 0), (0x9, 0), (0x1, 1), (0x9, 1), (0x9, 1)),
    "xhci_msi": ((0x7, 1), (0x9, 16), (0x9, 0), (0x9, 1), (0x9, 1)),
    "e1000e": ((0x7, 1), (0x9, 1), (0x1, 5), (0x9, 1), (0x9, 1)),
}
LAB_IRQ_INFO = {"6.1": _BEFORE_DYN_MSIX, "6.12": _DYN_MSIX, "7.2": _DYN_MSIX}
# interrupt pin (as vfio-pci shows it), PCI_COMMAND at open, VFIO_DEVICE_RESET works
LAB_CONFIG = {
    "nvme_vf": (0, 0x0002, True),
    "xhci_msi": (1, 0x0103, False),
    "e1000e": (1, 0x0103, True),
}
CFG = u.VFIO_PCI_CONFIG_REGION_INDEX
ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["pytester"]


@pytest.mark.parametrize("kernel", sorted(LAB_IRQ_INFO))
@pytest.mark.parametrize("preset", sorted(LAB_CONFIG))
def test_sim_preset_answers_as_the_lab_device(preset: str, kernel: str) -> None:
    with parse_target(f"sim:{preset}@{kernel}").open() as dev:
        answers = tuple((int(i.flags), i.count) for i in map(dev.irq_info, range(5)))
        assert answers == LAB_IRQ_INFO[kernel][preset]
        with pytest.raises(VfioError):  # past the last index, as on every kernel
            dev.irq_info(5)
        pin = dev.read_region(CFG, 0x3D, 1)[0]
        command = struct.unpack("<H", dev.read_region(CFG, 0x04, 2))[0]
        try:
            dev.reset()
            resets = True
        except VfioError:
            resets = False
        assert (pin, command, resets) == LAB_CONFIG[preset]


@pytest.mark.parametrize("preset", sorted(LAB_CONFIG))
def test_the_twin_of_a_kind_preset_is_the_preset(preset: str) -> None:
    """The differential check builds its model from the device: for these
    presets that must give their hardware back (6.12, where NORESIZE shows
    dynamic MSI-X)."""
    with parse_target(f"sim:{preset}@6.12").open() as dev:
        twin = twin_of(dev)
        assert twin.function == dev.function == function_of(dev)  # type: ignore[attr-defined]
        twin.close()


def test_a_vf_refuses_intx_as_the_lab_vf_did() -> None:
    """SET_IRQS on INTx of a VF: count 0, so any trigger is EINVAL (measured:
    an INTx eventfd on the lab VF was EINVAL on 6.1, 6.12 and 7.2, and
    scenarios/vf_no_intx.yaml passed on it on 6.1, 6.12 and 7.2)."""
    from vfio_hil import EventFd, IrqIndex, IrqSet

    with parse_target("sim:nvme_vf@6.12").open() as dev, EventFd() as fd:
        with pytest.raises(VfioError) as err:
            dev.set_irqs(IrqSet.eventfds(IrqIndex.INTX, 0, [fd]))
        assert err.value.errno == 22


def test_shipped_scenarios_pass_on_the_kind_presets(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every shipped scenario on sim:nvme_vf, sim:xhci_msi and sim:e1000e of
    each lab kernel; msi_multi_vector and vf_no_intx, which need these
    devices, pass on them (in the lab they ran on the real ones)."""
    monkeypatch.delenv("VFIO_HIL_DEVICES", raising=False)
    sims = [f"{p}@{k}" for p in ("nvme_vf", "xhci_msi", "e1000e") for k in sorted(LAB_IRQ_INFO)]
    monkeypatch.setenv("VFIO_HIL_SIM", ",".join(sims))
    shutil.copytree(ROOT / "scenarios", pytester.path / "scenarios")
    pytester.makeconftest(
        "from vfio_hil._plugin.scenarios import collect_file\n\n"
        "def pytest_collect_file(file_path, parent):\n"
        "    return collect_file(file_path, parent)\n"
    )
    result = pytester.runpytest("-p", "no:vfio_hil", "-p", "no:cacheprovider", "-v", "scenarios")
    counts = result.parseoutcomes()
    assert counts.get("failed", 0) == counts.get("errors", 0) == 0, result.stdout.str()
    out = result.stdout.str()
    for stem, preset in (("msi_multi_vector", "xhci_msi"), ("vf_no_intx", "nvme_vf")):
        for kernel in sorted(LAB_IRQ_INFO):
            assert f"{stem}.yaml::{stem}[sim:{preset}@{kernel}] PASSED" in out, out


def test_multi_vector_msi_scenarios_follow_interrupt_remapping(pytester: pytest.Pytester) -> None:
    """On the xhci without interrupt remapping (the lab's xhci-msi with
    --iommu none, where 7.2.13 answered an enable of three MSI vectors with
    1) the scenario for that passes and the remapped one skips, and the
    other way round with remapping."""
    for name in ("msi_multi_vector", "msi_multi_vector_without_remapping"):
        shutil.copy(ROOT / "scenarios" / f"{name}.yaml", pytester.path)
    pytester.makeconftest(
        "from vfio_hil import SimDevice\n"
        "from vfio_hil._plugin.scenarios import collect_file\n"
        "from vfio_hil._plugin.state import TARGETS\n"
        "from vfio_hil._targets import Target\n\n"
        "def pytest_collect_file(file_path, parent):\n"
        "    return collect_file(file_path, parent)\n\n"
        "def pytest_configure(config):\n"
        "    config.stash[TARGETS] = [\n"
        "        Target(f'sim:xhci_msi{suffix}@{k}', True,\n"
        "               lambda k=k, m=m: SimDevice.xhci_msi(kernel=k, multi_msi=m,\n"
        "                                                   name=f'sim:xhci_msi{suffix}'))\n"
        f"        for k in {sorted(LAB_IRQ_INFO)!r}\n"
        "        for m, suffix in ((True, ''), (False, '-no-remapping'))\n"
        "    ]\n"
    )
    result = pytester.runpytest("-p", "no:vfio_hil", "-p", "no:cacheprovider", "-v", "-rs")
    out = result.stdout.str()
    assert result.parseoutcomes().get("failed", 0) == 0, out
    for kernel in sorted(LAB_IRQ_INFO):
        assert f"msi_multi_vector[sim:xhci_msi@{kernel}] PASSED" in out, out
        remapless = f"sim:xhci_msi-no-remapping@{kernel}"
        assert f"msi_multi_vector_without_remapping[{remapless}] PASSED" in out, out
        assert f"msi_multi_vector[{remapless}] SKIPPED" in out, out
