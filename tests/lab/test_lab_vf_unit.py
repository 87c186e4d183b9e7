"""The guest's VF discovery on a sysfs-shaped tree (the lab boots the real one).

What the kernel does with sriov_numvfs is the lab's to show
(tests/lab/test_lab_devices.py); these check the choices around it: a plain
id never matches a VF, an existing VF is reused, a PF without SR-IOV is
refused naming it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vfio_hil._lab import guest


def _dev(root: Path, address: str, vendor: str, device: str) -> Path:
    dev = root / "devices" / address
    dev.mkdir(parents=True)
    (dev / "vendor").write_text(f"0x{vendor}\n")
    (dev / "device").write_text(f"0x{device}\n")
    return dev


def _pf_with_vf(root: Path) -> None:
    pf = _dev(root, "0000:01:00.0", "1b36", "0010")
    vf = _dev(root, "0000:01:00.1", "1b36", "0010")
    (pf / "sriov_totalvfs").write_text("1\n")
    (pf / "virtfn0").symlink_to(vf)
    (vf / "physfn").symlink_to(pf)


def test_a_plain_id_matches_the_pf_and_never_its_vf(tmp_path: Path) -> None:
    _pf_with_vf(tmp_path)
    found = guest.find_devices(["1b36:0010"], tmp_path / "devices")
    assert found == [("0000:01:00.0", "1b36:0010")]


def test_vf_id_yields_the_existing_vf(tmp_path: Path) -> None:
    _pf_with_vf(tmp_path)
    found = guest.find_devices(["vf:1b36:0010"], tmp_path / "devices")
    assert found == [("0000:01:00.1", "1b36:0010")]


def test_a_pf_without_sriov_is_refused_naming_it(tmp_path: Path) -> None:
    _dev(tmp_path, "0000:02:00.0", "8086", "10d3")
    with pytest.raises(guest.GuestError, match=r"0000:02:00.0 \(8086:10d3\) has no SR-IOV"):
        guest.find_devices(["vf:8086:10d3"], tmp_path / "devices")


def test_a_missing_pf_names_what_is_present(tmp_path: Path) -> None:
    _dev(tmp_path, "0000:00:1f.0", "8086", "2918")
    with pytest.raises(guest.GuestError, match=r"no PCI device 1b36:0010.*0000:00:1f.0 8086:2918"):
        guest.find_devices(["vf:1b36:0010"], tmp_path / "devices")
