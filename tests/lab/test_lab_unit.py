"""Unit tests of the lab's pure parts: no QEMU, no network, no root.

Package names are the ones Debian publishes (bookworm, trixie, sid in 2026);
console samples follow the kernel's printk formats for each report type.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vfio_hil._cli import lab as cli
from vfio_hil._cli import main as vfio_hil_main
from vfio_hil._exit import Exit
from vfio_hil._lab import apt, guest, kernels, qemu
from vfio_hil._lab._util import LabError
from vfio_hil._lab.console import ConsoleScanner, classify, scan, split_kernel_text
from vfio_hil._lab.kernels import Kernel, KernelSpec
from vfio_hil._lab.run import LabResult, guest_script

# --- kernel specs -----------------------------------------------------------


def test_all_is_the_three_kernel_matrix() -> None:
    specs = kernels.parse_spec("all")
    assert [s.label for s in specs] == ["6.1", "6.12", "7"]
    assert specs[0].groups == ("bookworm",)
    assert specs[1].groups == ("trixie",)
    # sid first, trixie-backports when sid has no 7.x.
    assert specs[2].groups == ("sid", "trixie-backports")


def test_newest_has_no_series_restriction() -> None:
    (spec,) = kernels.parse_spec("newest")
    assert spec.series == ()
    assert spec.groups == ("sid", "trixie-backports")


def test_other_series_search_every_suite() -> None:
    (spec,) = kernels.parse_spec("7.3")
    assert spec.series == (7, 3)
    assert set(spec.groups) == {"sid", "trixie-backports", "trixie", "bookworm"}


def test_local_kernel_spec_with_modules_dir(tmp_path: Path) -> None:
    (spec,) = kernels.parse_spec(f"{tmp_path}/bzImage:{tmp_path}/mods")
    assert spec.is_local
    assert spec.path == tmp_path / "bzImage"
    assert spec.modules == tmp_path / "mods"


def test_local_kernel_spec_without_modules_dir(tmp_path: Path) -> None:
    (spec,) = kernels.parse_spec(f"{tmp_path}/vmlinuz")
    assert spec.path == tmp_path / "vmlinuz"
    assert spec.modules is None


def test_unknown_spec_is_an_error_naming_the_valid_ones() -> None:
    with pytest.raises(LabError, match=r"6\.1, 6\.12, 7, newest, all"):
        kernels.parse_spec("latest")


def test_repeated_specs_are_deduplicated_in_order() -> None:
    specs = kernels.parse_specs(["7", "all", "6.1"])
    assert [s.label for s in specs] == ["7", "6.1", "6.12"]


# --- package selection --------------------------------------------------------

BOOKWORM = [
    "linux-image-6.1.0-47-amd64",
    "linux-image-6.1.0-47-amd64-unsigned",
    "linux-image-6.1.0-9-amd64",
    "linux-image-6.1.0-56-amd64",
    "linux-image-6.1.0-56-amd64-unsigned",
    "linux-image-6.1.0-56-amd64-dbg",
    "linux-image-6.1.0-56-cloud-amd64",
    "linux-image-6.1.0-56-rt-amd64-unsigned",
    "linux-image-amd64",
]
TRIXIE = [
    "linux-image-6.12-amd64",
    "linux-image-6.12.117+deb13-amd64",
    "linux-image-6.12.117+deb13-amd64-unsigned",
    "linux-image-6.12.118+deb13-amd64",
    "linux-image-6.12.118+deb13-amd64-unsigned",
    "linux-image-6.12.118+deb13-cloud-amd64",
]
SID = [
    "linux-binary-7.2.13+deb14-amd64",
    "linux-binary-unsigned-7.2.13+deb14-amd64",
    "linux-modules-7.2.13+deb14-amd64",
    "linux-modules-7.2.13+deb14-cloud-amd64",
    "linux-base-7.2.13+deb14-amd64",
    "linux-image-7.2.13+deb14-amd64",
    # A newer binary whose modules are not in the suite yet is unusable.
    "linux-binary-7.2.14+deb14-amd64",
    "linux-image-6.19.14+deb13-amd64",
]


def test_bookworm_picks_newest_abi_unsigned() -> None:
    cand = kernels.select_newest(BOOKWORM, (6, 1))
    assert cand is not None
    assert cand.release == "6.1.0-56-amd64"
    assert cand.packages == ("linux-image-6.1.0-56-amd64-unsigned",)


def test_abi_numbers_compare_numerically() -> None:
    # 56 > 9 although "9" > "56" as strings.
    assert kernels.release_key("6.1.0-56-amd64") > kernels.release_key("6.1.0-9-amd64")


def test_series_6_1_does_not_match_6_12() -> None:
    assert kernels.select_newest(TRIXIE, (6, 1)) is None


def test_trixie_picks_newest_point_release() -> None:
    cand = kernels.select_newest(TRIXIE, (6, 12))
    assert cand is not None
    assert cand.release == "6.12.118+deb13-amd64"
    assert cand.packages == ("linux-image-6.12.118+deb13-amd64-unsigned",)


def test_sid_split_packages_bring_modules_and_base() -> None:
    cand = kernels.select_newest(SID, (7,))
    assert cand is not None
    assert cand.release == "7.2.13+deb14-amd64"
    assert cand.packages == (
        "linux-binary-unsigned-7.2.13+deb14-amd64",
        "linux-modules-7.2.13+deb14-amd64",
        "linux-base-7.2.13+deb14-amd64",
    )


def test_signed_only_release_is_still_usable() -> None:
    cand = kernels.select_newest(["linux-image-6.1.0-49-amd64"], (6, 1))
    assert cand is not None
    assert cand.packages == ("linux-image-6.1.0-49-amd64",)


def test_newest_of_any_series() -> None:
    cand = kernels.select_newest(SID)
    assert cand is not None
    assert cand.version == (7, 2, 13)


def test_upstream_version_strips_debian_revision_and_backport_suffix() -> None:
    assert kernels.upstream_version("6.1.192-2") == "6.1.192"
    assert kernels.upstream_version("7.3.4-1~bpo13+1") == "7.3.4"
    assert kernels.upstream_version("1:2.0-1") == "2.0"


def _bzimage(release_line: bytes) -> bytes:
    # x86 boot protocol: "HdrS" at 0x202, kernel_version pointer at 0x20e,
    # pointing 0x200 bytes before the NUL-terminated version string.
    header = bytearray(0x400)
    header[0x202:0x206] = b"HdrS"
    header[0x20E:0x210] = (0x300 - 0x200).to_bytes(2, "little")
    header[0x300 : 0x300 + len(release_line) + 1] = release_line + b"\0"
    return bytes(header)


def test_bzimage_release_reads_the_setup_header() -> None:
    blob = _bzimage(b"6.12.118+deb13-amd64 (debian-kernel@lists.debian.org) #1 SMP")
    assert kernels.bzimage_release(blob) == "6.12.118+deb13-amd64"


def test_bzimage_release_rejects_other_files() -> None:
    assert kernels.bzimage_release(b"\x7fELF" + bytes(0x400)) is None


# --- cache -------------------------------------------------------------------


def _cached(cache: Path, release: str, source: str) -> Kernel:
    root = cache / release / "root"
    (root / "boot").mkdir(parents=True)
    (root / "boot" / f"vmlinuz-{release}").write_bytes(b"")
    (root / "lib" / "modules" / release).mkdir(parents=True)
    k = Kernel(
        name="x",
        release=release,
        upstream=release.split("-")[0],
        vmlinuz=root / "boot" / f"vmlinuz-{release}",
        modules_dir=root / "lib" / "modules" / release,
        root=root,
        source=source,
        packages=(f"linux-image-{release}",),
    )
    kernels.write_manifest(k, cache / release)
    return k


def test_cached_kernel_is_reused_without_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cached(tmp_path, "6.1.0-50-amd64", "bookworm")
    _cached(tmp_path, "6.1.0-56-amd64", "bookworm")
    _cached(tmp_path, "6.12.118+deb13-amd64", "trixie")

    def no_network(*args: object) -> None:
        raise AssertionError("apt was used although the kernel is cached")

    monkeypatch.setattr(kernels, "PrivateApt", no_network)
    k = kernels.resolve(kernels.NAMED_SPECS["6.1"], cache=tmp_path)
    assert k.release == "6.1.0-56-amd64"
    assert k.name == "6.1"
    assert kernels.resolve(kernels.NAMED_SPECS["6.12"], cache=tmp_path).source == "trixie"


def test_cache_dir_honours_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VFIO_HIL_CACHE", str(tmp_path / "k"))
    assert kernels.cache_dir() == tmp_path / "k"
    monkeypatch.delenv("VFIO_HIL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert kernels.cache_dir() == tmp_path / "xdg" / "vfio-hil" / "kernels"


def test_incomplete_download_is_not_listed(tmp_path: Path) -> None:
    k = _cached(tmp_path, "6.1.0-56-amd64", "bookworm")
    k.vmlinuz.unlink()
    assert kernels.cached_kernels(tmp_path) == []


def test_merged_usr_tree_gets_lib_and_boot_links(tmp_path: Path) -> None:
    # The 7.x split packages: modules and vmlinuz under usr/lib/modules/<rel>.
    rel = "7.2.13+deb14-amd64"
    moddir = tmp_path / "usr" / "lib" / "modules" / rel
    moddir.mkdir(parents=True)
    (moddir / "vmlinuz").write_bytes(b"kernel")
    image, modules = kernels._normalise_tree(tmp_path, rel)
    assert (tmp_path / "lib").is_symlink()
    assert modules.resolve() == moddir.resolve()
    assert image == tmp_path / "boot" / f"vmlinuz-{rel}"
    assert image.read_bytes() == b"kernel"


def test_manifest_round_trip(tmp_path: Path) -> None:
    k = _cached(tmp_path, "6.1.0-56-amd64", "bookworm")
    data = json.loads((tmp_path / k.release / kernels.MANIFEST).read_text())
    assert data["vmlinuz"] == str(k.vmlinuz)
    assert kernels.cached_kernels(tmp_path) == [k]


# --- private apt ---------------------------------------------------------------


def test_sources_list_for_bookworm_includes_security() -> None:
    text = apt.sources_list("bookworm", "http://deb.debian.org", Path("/k.gpg"))
    assert text.splitlines() == [
        "deb [arch=amd64 signed-by=/k.gpg] http://deb.debian.org/debian bookworm main",
        "deb [arch=amd64 signed-by=/k.gpg] http://deb.debian.org/debian-security "
        "bookworm-security main",
    ]


def test_apt_options_keep_all_state_private(tmp_path: Path) -> None:
    opts = apt.apt_options(tmp_path, as_root=False)
    values = dict(o.split("=", 1) for o in opts[1::2])
    for key in (
        "Dir::Etc::sourcelist",
        "Dir::Etc::sourceparts",
        "Dir::State",
        "Dir::Cache",
        "Dir::State::status",
        "Dir::Etc::preferencesparts",
    ):
        assert values[key].startswith(str(tmp_path)), key
    assert "APT::Sandbox::User" not in values


def test_apt_search_output_parsing() -> None:
    out = (
        "linux-image-6.1.0-56-amd64 - Linux 6.1 for 64-bit PCs (signed)\n"
        "linux-binary-unsigned-7.2.13+deb14-amd64 - Linux 7.2.13 for 64-bit PCs\n"
    )
    assert apt.parse_search_output(out) == [
        "linux-image-6.1.0-56-amd64",
        "linux-binary-unsigned-7.2.13+deb14-amd64",
    ]


# --- QEMU argv -------------------------------------------------------------------


def _argv(accel: qemu.Accel, preset: str = "default") -> list[str]:
    return qemu.build_virtme_argv(
        virtme_run=["virtme-run"],
        qemu="/usr/bin/qemu-system-x86_64",
        vmlinuz=Path("/c/6.1/root/boot/vmlinuz-6.1.0-56-amd64"),
        accel=accel,
        preset=qemu.get_preset(preset),
        guest_script=Path("/r/6.1/guest.sh"),
        rwdirs=[Path("/r/6.1")],
        cwd=Path("/src"),
    )


def test_argv_under_tcg() -> None:
    argv = _argv("tcg")
    assert argv[:3] == ["virtme-run", "--kimg", "/c/6.1/root/boot/vmlinuz-6.1.0-56-amd64"]
    assert "--disable-kvm" in argv
    assert argv[argv.index("--rwdir") + 1] == "/r/6.1"
    assert argv[argv.index("--script-sh") + 1] == "exec /bin/sh /r/6.1/guest.sh"
    kargs = [argv[i + 1] for i, a in enumerate(argv) if a == "-a"]
    assert "intel_iommu=on" in kargs
    # --qemu-opts swallows the rest of the argv, so it must come last.
    tail = argv[argv.index("--qemu-opts") + 1 :]
    assert tail[:2] == ["-machine", "q35"]
    # One TCG thread: multi-threaded TCG races the kernel's code patching.
    assert tail[2:4] == ["-accel", "tcg,thread=single"]
    assert tail[4:6] == ["-device", "intel-iommu,intremap=on"]
    assert "edu" in tail
    assert any(a.startswith("virtio-rng-pci,") and "vectors=64" in a for a in tail)


def test_extra_kernel_args_go_on_the_guest_kernel_s_command_line() -> None:
    # The selftests' guest reserves its 1 GiB hugepage at boot this way.
    argv = qemu.build_virtme_argv(
        virtme_run=["virtme-run"],
        qemu="/usr/bin/qemu-system-x86_64",
        vmlinuz=Path("/c/7.2/vmlinuz"),
        accel="tcg",
        preset=qemu.get_preset("default"),
        guest_script=Path("/r/guest.sh"),
        rwdirs=[],
        cwd=Path("/src"),
        extra_kernel_args=("hugepagesz=1G", "hugepages=1"),
    )
    before_qemu = argv[: argv.index("--qemu-opts")]
    kargs = [before_qemu[i + 1] for i, a in enumerate(before_qemu) if a == "-a"]
    assert kargs[-2:] == ["hugepagesz=1G", "hugepages=1"]
    assert "intel_iommu=on" in kargs  # added to the lab's own, not instead


def test_argv_under_kvm_uses_split_irqchip() -> None:
    argv = _argv("kvm")
    assert "--disable-kvm" not in argv
    tail = argv[argv.index("--qemu-opts") + 1 :]
    assert tail[:2] == ["-machine", "q35,kernel-irqchip=split"]


def test_virtio_device_sits_behind_a_pcie_root_port() -> None:
    args = qemu.get_preset("default").qemu_args
    port = next(a for a in args if a.startswith("pcie-root-port,"))
    port_id = port.split("id=")[1].split(",")[0]
    rng = next(a for a in args if a.startswith("virtio-rng-pci,"))
    assert f"bus={port_id}" in rng


def test_scale_preset_has_the_msix_maximum() -> None:
    preset = qemu.get_preset("scale")
    rng = next(a for a in preset.qemu_args if a.startswith("virtio-rng-pci,"))
    assert "vectors=2048" in rng
    assert preset.ids == ("1234:11e8", "1af4:1044")


def test_unknown_preset_lists_known_ones() -> None:
    with pytest.raises(LabError, match="default, scale"):
        qemu.get_preset("huge")


def test_accel_choice() -> None:
    assert qemu.choose_accel("tcg", "broken") == ("tcg", None)
    assert qemu.choose_accel("auto", None) == ("kvm", None)
    accel, note = qemu.choose_accel("auto", "no banner")
    assert accel == "tcg"
    assert note is not None
    assert "falling back to TCG" in note
    with pytest.raises(LabError, match="KVM is unusable"):
        qemu.choose_accel("kvm", "no banner")


# --- console scanning --------------------------------------------------------------

NULL_DEREF = """\
[   40.101010] vfio-hil: test tests/test_irq.py::test_msix_trigger[64]
[   45.123456] BUG: kernel NULL pointer dereference, address: 0000000000000008
[   45.123500] #PF: supervisor read access in kernel mode
[   45.123510] #PF: error_code(0x0000) - not-present page
[   45.123520] PGD 0 P4D 0
[   45.123530] Oops: 0000 [#1] PREEMPT SMP NOPTI
[   45.123540] CPU: 1 PID: 321 Comm: python3 Not tainted 6.1.0-56-amd64 #1  Debian 6.1.192-2
[   45.123560] RIP: 0010:vfio_msi_set_vector_signal+0x3a/0x1f0 [vfio_pci_core]
[   45.123900] ---[ end trace 0000000000000000 ]---
"""


def test_null_dereference_is_one_finding_attributed_to_the_test() -> None:
    s = scan(NULL_DEREF)
    assert len(s.findings) == 1
    (f,) = s.findings
    assert f.kind == "BUG"
    assert f.fatal
    assert f.test == "tests/test_irq.py::test_msix_trigger[64]"
    assert f.line == "BUG: kernel NULL pointer dereference, address: 0000000000000008"
    assert any("vfio_msi_set_vector_signal" in c for c in f.context)


def test_each_fatal_report_type_is_recognised() -> None:
    samples = {
        "soft lockup": "watchdog: BUG: soft lockup - CPU#0 stuck for 26s! [python3:412]",
        "hard lockup": "watchdog: Watchdog detected hard LOCKUP on cpu 1",
        "hung task": "INFO: task python3:412 blocked for more than 60 seconds.",
        "rcu stall": "rcu: INFO: rcu_preempt self-detected stall on CPU",
        "panic": "Kernel panic - not syncing: Fatal exception in interrupt",
        "oops": "Oops: general protection fault, probably for non-canonical address "
        "0xdead000000000122: 0000 [#1] PREEMPT SMP NOPTI",
        "general protection fault": "general protection fault, probably for non-canonical "
        "address 0xdead000000000122: 0000 [#1] PREEMPT SMP NOPTI",
        "BUG": "BUG: scheduling while atomic: python3/412/0x00000002",
    }
    for kind, text in samples.items():
        assert classify(text) == (kind, True), kind


def test_warning_is_reported_but_not_fatal() -> None:
    text = (
        "[   12.000001] WARNING: CPU: 0 PID: 412 at drivers/vfio/pci/vfio_pci_intrs.c:123 "
        "vfio_msi_set_vector_signal+0x1b5/0x1c0 [vfio_pci_core]\n"
    )
    s = scan(text)
    assert [(f.kind, f.fatal) for f in s.findings] == [("warning", False)]
    assert s.fatal == []


def test_user_output_mentioning_bug_is_not_a_kernel_failure() -> None:
    s = scan("assert 'BUG: kernel NULL pointer dereference' in log\nOops: typo\n")
    assert s.findings == []


def test_kernel_text_after_user_output_on_the_same_line() -> None:
    # pytest -v leaves the node id without a newline while the test runs.
    line = "tests/t.py::test_x [  101.000001] BUG: unable to handle page fault for address: 8"
    assert split_kernel_text(line) == (
        "tests/t.py::test_x ",
        "BUG: unable to handle page fault for address: 8",
    )
    s = scan(line)
    assert [(f.kind, f.test) for f in s.findings] == [("BUG", "tests/t.py::test_x")]


def test_panic_after_oops_is_a_separate_finding() -> None:
    s = scan(NULL_DEREF + "[   45.200000] Kernel panic - not syncing: Fatal exception\n")
    assert [f.kind for f in s.findings] == ["BUG", "panic"]


def test_failure_outside_tests() -> None:
    s = scan("[    3.000000] INFO: task kworker/0:1:12 blocked for more than 60 seconds.\n")
    assert s.findings[0].test is None
    assert "outside any test" in s.findings[0].summary()


def test_markers_give_the_timings() -> None:
    s = ConsoleScanner()
    s.feed("[    0.000000] Linux version 6.1.0-56-amd64", 3.0)
    s.feed("VFIO-HIL-LAB: guest up: kernel 6.1.0-56-amd64", 10.0)
    s.feed("VFIO-HIL-LAB: command start: pytest", 12.0)
    s.feed("[   20.000000] vfio-hil: test t.py::test_a", 18.5)
    s.feed("[   21.000000] vfio-hil: test t.py::test_b", 19.0)
    s.feed("VFIO-HIL-LAB: command exit 1", 20.0)
    assert (s.guest_up_at, s.command_start_at, s.first_test_at) == (10.0, 12.0, 18.5)
    assert s.current_test == "t.py::test_b"
    assert s.command_exit == 1


# --- guest side -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["pytest", "-q"], True),
        (["/venv/bin/pytest"], True),
        (["/venv/bin/python3.11", "-m", "pytest", "tests"], True),
        (["python", "-c", "import pytest"], False),
        (["sh", "-c", "pytest"], False),
        ([], False),
    ],
)
def test_is_pytest(command: list[str], expected: bool) -> None:
    assert guest.is_pytest(command) is expected


def test_pytest_command_gets_junit_and_marker_plugin() -> None:
    out = guest.pytest_command(["python3", "-m", "pytest", "-x", "tests"], Path("/r"))
    assert out[:3] == ["python3", "-m", "pytest"]
    assert out[-2:] == ["-x", "tests"]
    assert "--junitxml=/r/junit.xml" in out
    assert out[out.index("-p") + 1] == "vfio_hil._lab.pytest_plugin"
    out = guest.pytest_command(["pytest", "tests"], Path("/r"))
    assert out[0] == "pytest"
    assert out[1] == "--junitxml=/r/junit.xml"
    assert out[-1] == "tests"


def _fake_pci(root: Path, address: str, vendor: str, device: str, group: str) -> None:
    dev = root / "devices" / address
    dev.mkdir(parents=True)
    (dev / "vendor").write_text(f"0x{vendor}\n")
    (dev / "device").write_text(f"0x{device}\n")
    (root / "groups" / group).mkdir(parents=True)
    (dev / "iommu_group").symlink_to(root / "groups" / group)


def test_find_devices_by_vendor_device(tmp_path: Path) -> None:
    _fake_pci(tmp_path, "0000:00:0a.0", "1234", "11e8", "10")
    _fake_pci(tmp_path, "0000:01:00.0", "1af4", "1044", "13")
    _fake_pci(tmp_path, "0000:00:1f.0", "8086", "2918", "9")
    found = guest.find_devices(["1AF4:1044", "1234:11e8"], tmp_path / "devices")
    assert found == [("0000:01:00.0", "1af4:1044"), ("0000:00:0a.0", "1234:11e8")]


def test_missing_device_names_what_is_present(tmp_path: Path) -> None:
    _fake_pci(tmp_path, "0000:00:1f.0", "8086", "2918", "9")
    with pytest.raises(guest.GuestError, match=r"1234:11e8.*0000:00:1f.0 8086:2918"):
        guest.find_devices(["1234:11e8"], tmp_path / "devices")


def test_group_node(tmp_path: Path) -> None:
    _fake_pci(tmp_path, "0000:00:0a.0", "1234", "11e8", "10")
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "10").touch()
    group, node = guest.group_node("0000:00:0a.0", tmp_path / "devices", tmp_path / "dev")
    assert (group, node) == ("10", str(tmp_path / "dev" / "10"))


# --- host side ------------------------------------------------------------------------------


def _kernel() -> Kernel:
    root = Path("/cache/6.1.0-56-amd64/root")
    return Kernel(
        "6.1",
        "6.1.0-56-amd64",
        "6.1.192",
        root / "boot/vmlinuz-6.1.0-56-amd64",
        root / "lib/modules/6.1.0-56-amd64",
        root,
        "bookworm",
    )


def test_guest_script_runs_the_host_python_by_absolute_path() -> None:
    script = guest_script(
        _kernel(),
        qemu.get_preset("default"),
        ["pytest", "-k", "a b"],
        Path("/r/6.1"),
        1000.0,
        {"X": "1"},
    )
    lines = script.splitlines()
    assert lines[0] == "#!/bin/sh"
    assert "export X=1" in lines
    exec_line = lines[-1]
    assert exec_line.startswith("exec /")  # the interpreter by absolute path
    assert "--device 1234:11e8 --device 1af4:1044" in exec_line
    assert "--modroot /cache/6.1.0-56-amd64/root" in exec_line
    assert exec_line.endswith("-- pytest -k 'a b'")


def test_lab_result_verdicts() -> None:
    r = LabResult(_kernel(), "tcg", ["true"], Path("/r"), exit_code=0)
    assert r.ok
    assert r.verdict() == "PASS"
    r = LabResult(_kernel(), "tcg", ["false"], Path("/r"), exit_code=1)
    assert not r.ok
    assert not r.guest_failed
    assert r.verdict() == "FAIL (exit 1)"
    r = LabResult(_kernel(), "tcg", ["x"], Path("/r"), timed_out=True, error="hard timeout")
    assert r.guest_failed
    assert r.verdict() == "TIMEOUT"
    r = LabResult(
        _kernel(), "tcg", ["x"], Path("/r"), exit_code=0, findings=scan(NULL_DEREF).findings
    )
    assert r.guest_failed
    assert r.verdict() == "KERNEL FAILURE"


def test_kernel_spec_is_hashable_for_dedup() -> None:
    assert len({KernelSpec("6.1", ("bookworm",), (6, 1)), kernels.NAMED_SPECS["6.1"]}) == 1


# --- command line ---------------------------------------------------------------------------


def test_env_pairs() -> None:
    assert cli.env_pairs(["A=1", "B_2=x=y", "EMPTY="]) == {"A": "1", "B_2": "x=y", "EMPTY": ""}
    for bad in ("A", "=1", "A B=1", "1A=2"):
        with pytest.raises(LabError, match="NAME=VALUE"):
            cli.env_pairs([bad])


def test_bad_kernel_spec_exits_2_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert vfio_hil_main(["lab", "fetch", "--kernel", "latest"]) == Exit.USAGE
    assert "unknown kernel spec 'latest'" in capsys.readouterr().err


def test_run_without_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert vfio_hil_main(["lab", "run", "--kernel", "6.1", "--"]) == Exit.USAGE
    assert "no command" in capsys.readouterr().err


# --- cached reads in the guest ------------------------------------------------------------

MOUNTINFO = """\
22 1 0:20 / / ro,relatime - 9p /dev/root ro,access=any,msize=512000,trans=virtio
23 22 0:21 / /run rw,relatime - tmpfs none rw,mode=755
31 22 0:27 / /usr/lib/modules rw,relatime - tmpfs none rw
33 22 0:29 / /work/main/lab\\040results/6.1 rw,relatime - 9p virtme.initmount0 rw,trans=virtio
34 33 0:30 / /work/main/lab\\040results/6.1/inner rw,relatime - tmpfs none rw
"""


def test_mount_points_decode_octal_escapes() -> None:
    assert guest.mount_points(MOUNTINFO) == [
        "/",
        "/run",
        "/usr/lib/modules",
        "/work/main/lab results/6.1",
        "/work/main/lab results/6.1/inner",
    ]


def test_cached_dirs_carry_the_mounts_below_them() -> None:
    mounts = guest.mount_points(MOUNTINFO)
    plan = guest.plan_cached_dirs(
        ["/usr", "/work/main", "/work/main/tests", "/", "/run", "relative"], mounts
    )
    # /work/main/tests is inside /work/main; / and the /run mount point are
    # never re-bound; a nested mount moves with its parent.
    assert plan == [
        ("/usr", ["/usr/lib/modules"]),
        ("/work/main", ["/work/main/lab results/6.1"]),
    ]


def test_argv_adds_the_cached_host_share() -> None:
    tail = _argv("tcg")[_argv("tcg").index("--qemu-opts") + 1 :]
    fsdev = tail[tail.index("-fsdev") + 1]
    assert "path=/" in fsdev
    assert "readonly=on" in fsdev
    assert f"mount_tag={guest.HOST_SHARE_TAG}" in tail[tail.index("-fsdev") + 3]


def test_lib_modules_tree_also_answers_under_usr(tmp_path: Path) -> None:
    # bookworm's 6.1 package ships lib/modules; a merged-/usr kmod looks in usr/lib.
    rel = "6.1.0-56-amd64"
    (tmp_path / "lib" / "modules" / rel).mkdir(parents=True)
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot" / f"vmlinuz-{rel}").write_bytes(b"k")
    kernels._normalise_tree(tmp_path, rel)
    assert (tmp_path / "usr" / "lib" / "modules" / rel).resolve() == (
        tmp_path / "lib" / "modules" / rel
    ).resolve()


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("VFIO_HIL_CACHE", "/proc/nope", "the kernel cache VFIO_HIL_CACHE /proc/nope cannot be"),
        (
            "VFIO_HIL_QEMU",
            "/nonexistent/qemu",
            "VFIO_HIL_QEMU=/nonexistent/qemu: not an executable",
        ),
    ],
)
def test_a_bad_lab_environment_variable_is_one_line_before_anything_boots(
    name: str, value: str, says: str
) -> None:
    # Was a FileNotFoundError traceback (the cache), and a QEMU command line
    # naming a binary that does not exist (VFIO_HIL_QEMU).
    env = {**os.environ, name: value}
    done = subprocess.run(
        [sys.executable, "-m", "vfio_hil", "lab", "run", "--show-command", "--", "true"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 2, done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("kernel", "says"),
    [("", "empty kernel spec"), ("/tmp", "kernel image /tmp is a directory")],
)
def test_an_empty_or_directory_kernel_spec_says_what_it_is(kernel: str, says: str) -> None:
    # '' was read as the current directory; /tmp was said not to exist.
    argv = ["lab", "run", "--show-command", "--kernel", kernel, "--", "true"]
    done = subprocess.run(
        [sys.executable, "-m", "vfio_hil", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert says in done.stderr
