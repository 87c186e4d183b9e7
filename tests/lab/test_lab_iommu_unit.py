"""The lab's own kernel and its IOMMU modes, without booting anything.

What a booted guest shows (cdev, group and NOIOMMU opens) is checked by
tests/lab/test_lab_kernels.py on the built kernel; these tests pin what the
host decides before a boot: the command line and QEMU devices per mode, the
refusal of NOIOMMU on a kernel without it, the spec and the build's checks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vfio_hil._cli import main as vfio_hil_main
from vfio_hil._exit import Exit
from vfio_hil._lab import build, guest, kernels, qemu, run
from vfio_hil._lab._util import LabError
from vfio_hil._lab.kernels import Kernel


def _kernel(tmp_path: Path, config: str | None, source: str = "trixie") -> Kernel:
    release = "6.12.118+deb13-amd64"
    root = tmp_path / release / "root"
    (root / "boot").mkdir(parents=True)
    (root / "boot" / f"vmlinuz-{release}").write_bytes(b"")
    (root / "lib" / "modules" / release).mkdir(parents=True)
    if config is not None:
        (root / "boot" / f"config-{release}").write_text(config)
    k = Kernel(
        "6.12",
        release,
        "6.12.118",
        root / "boot" / f"vmlinuz-{release}",
        root / "lib" / "modules" / release,
        root,
        source,
        ("linux-source-7.2 7.2.13-1 (sid)",) if source == "built" else (),
    )
    kernels.write_manifest(k, tmp_path / release)
    return k


def test_without_an_iommu_the_guest_has_no_vtd_and_vfio_allows_noiommu() -> None:
    args = qemu.machine_args("tcg", "none")
    assert "intel-iommu,intremap=on" not in args
    assert "vfio.enable_unsafe_noiommu_mode=1" in qemu.kernel_args("none")
    assert "intel_iommu=on" not in qemu.kernel_args("none")


def test_with_the_intel_iommu_the_guest_has_vtd_with_interrupt_remapping() -> None:
    assert qemu.machine_args("kvm", "intel")[-2:] == ["-device", "intel-iommu,intremap=on"]
    assert "intel_iommu=on" in qemu.kernel_args("intel")
    assert not any("noiommu" in a for a in qemu.kernel_args("intel"))


def test_noiommu_on_a_kernel_built_without_it_is_refused_before_booting(tmp_path: Path) -> None:
    debian = _kernel(tmp_path, "CONFIG_VFIO=m\n# CONFIG_VFIO_NOIOMMU is not set\n")
    with pytest.raises(LabError, match=r"without CONFIG_VFIO_NOIOMMU.*--kernel iommufd"):
        run.check_iommu(debian, "none")
    run.check_iommu(debian, "intel")  # the emulated IOMMU needs nothing of the kernel


def test_noiommu_on_a_kernel_with_it_or_without_a_config_is_let_through(tmp_path: Path) -> None:
    run.check_iommu(_kernel(tmp_path / "a", "CONFIG_VFIO_NOIOMMU=y\n"), "none")
    run.check_iommu(_kernel(tmp_path / "b", None), "none")  # a local kernel: unknown


def test_lab_run_iommu_none_on_a_debian_kernel_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _kernel(tmp_path, "# CONFIG_VFIO_NOIOMMU is not set\n")
    monkeypatch.setenv("VFIO_HIL_CACHE", str(tmp_path))
    code = vfio_hil_main(["lab", "run", "--kernel", "6.12", "--iommu", "none", "--", "true"])
    assert code == Exit.USAGE
    err = capsys.readouterr().err
    assert "CONFIG_VFIO_NOIOMMU" in err
    assert "Traceback" not in err


def test_the_iommufd_spec_names_only_the_built_kernel(tmp_path: Path) -> None:
    (spec,) = kernels.parse_spec("iommufd")
    built = _kernel(tmp_path / "b", "CONFIG_IOMMUFD=y\n", source="built")
    debian = _kernel(tmp_path / "d", "")
    assert kernels.matches(spec, built)
    assert not kernels.matches(spec, debian)
    for other in ("6.12", "7", "newest", "all"):
        assert not any(kernels.matches(s, built) for s in kernels.parse_spec(other))


def test_lab_kernels_lists_the_built_kernel_as_iommufd_with_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _kernel(tmp_path, "CONFIG_IOMMUFD=y\n", source="built")
    monkeypatch.setenv("VFIO_HIL_CACHE", str(tmp_path))
    assert vfio_hil_main(["lab", "kernels"]) == Exit.OK
    (line,) = [ln for ln in capsys.readouterr().out.splitlines() if not ln.startswith("#")]
    assert "iommufd" in line
    assert "linux-source-7.2 7.2.13-1" in line


def test_a_config_missing_a_required_symbol_is_named() -> None:
    config = "".join(f"CONFIG_{s}=y\n" for s in build.REQUIRED if s != "VFIO_NOIOMMU")
    assert build.missing_symbols(config + "# CONFIG_VFIO_NOIOMMU is not set\n") == ["VFIO_NOIOMMU"]
    assert build.missing_symbols("CONFIG_VFIO_PCI=m\n", ("VFIO_PCI",)) == ["VFIO_PCI"]


def test_the_lab_config_asks_for_every_required_symbol() -> None:
    # The fragment is merged over allnoconfig: what it does not ask for, the kernel lacks.
    assert build.missing_symbols(build.LAB_CONFIG) == []


def test_missing_build_tools_are_named_with_the_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(LabError, match=r"apt-get install gcc make flex bison bc"):
        build.check_tools()


def test_an_unknown_source_says_what_a_source_is(tmp_path: Path) -> None:
    with pytest.raises(LabError, match=r"give a series such as 7\.2"):
        build.build_kernel(tmp_path, source="seven")


def test_a_source_path_that_is_no_kernel_tree_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    with pytest.raises(LabError, match="not a kernel source tree"):
        build.build_kernel(tmp_path / "cache", source=str(tmp_path / "tree"))


def test_a_noiommu_group_node_is_found(tmp_path: Path) -> None:
    dev = tmp_path / "devices" / "0000:00:0a.0"
    dev.mkdir(parents=True)
    (tmp_path / "groups" / "0").mkdir(parents=True)
    (dev / "iommu_group").symlink_to(tmp_path / "groups" / "0")
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "noiommu-0").touch()
    group, node = guest.group_node("0000:00:0a.0", tmp_path / "devices", tmp_path / "dev")
    assert (group, node) == ("0", str(tmp_path / "dev" / "noiommu-0"))


def test_the_scale_preset_gets_the_vcpus_its_2048_vectors_need(tmp_path: Path) -> None:
    # An x86 CPU has about 200 interrupt vectors: with 2 vCPUs the kernel
    # refused to enable 2048 MSI-X vectors (ENOSPC, seen in the lab).
    k = _kernel(tmp_path, None)
    shown = run.show_commands([k], ["true"], accel="tcg", devices="scale", cpus=2)
    assert "--cpus 16" in shown
    assert "--cpus 2 " in run.show_commands([k], ["true"], accel="tcg", cpus=2)
