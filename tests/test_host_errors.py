"""What a user sees when a real device cannot be opened, without a device.

Each test builds a sysfs/dev/proc *directory layout* in tmp_path (no kernel
is mocked, no ioctl is faked: every case fails before the first ioctl) and
checks that the message says what is wrong and the hint says what to do.
"""

from __future__ import annotations

import errno
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from vfio_hil import _uapi as u
from vfio_hil._errors import VfioError, VfioHilError
from vfio_hil._host import (
    HostPaths,
    default_paths,
    hints,
    list_vfio_devices,
    open_device,
    parse_address,
    set_default_paths,
)
from vfio_hil._host.edu import EduStimulus
from vfio_hil._host.holders import find_holders
from vfio_hil._host.sysfs import read_pci_device

EDU = (0x1234, 0x11E8)
ADDR = "0000:00:03.0"


@dataclass
class FakeHost:
    """A /sys, /dev and /proc laid out like the real ones, under one root."""

    root: Path
    paths: HostPaths = field(init=False)

    def __post_init__(self) -> None:
        self.paths = HostPaths(self.root / "sys", self.root / "dev", self.root / "proc")
        self.paths.pci_devices.mkdir(parents=True)
        self.paths.dev.mkdir()
        self.paths.proc.mkdir()

    def add_device(
        self,
        address: str,
        ids: tuple[int, int] = EDU,
        driver: str | None = "vfio-pci",
        group: str | None = "5",
        cdev: str | None = None,
    ) -> Path:
        """A PCI function, linked the way sysfs links it."""
        real = self.paths.sys / "devices" / "pci0000:00" / address
        real.mkdir(parents=True)
        (real / "vendor").write_text(f"{ids[0]:#06x}\n")
        (real / "device").write_text(f"{ids[1]:#06x}\n")
        (self.paths.pci_devices / address).symlink_to(real)
        if driver is not None:
            drv = self.paths.pci_drivers / driver
            drv.mkdir(parents=True, exist_ok=True)
            (real / "driver").symlink_to(drv)
        if group is not None:
            members = self.paths.iommu_groups / group / "devices"
            members.mkdir(parents=True, exist_ok=True)
            (members / address).symlink_to(real)
            (real / "iommu_group").symlink_to(self.paths.iommu_groups / group)
        if cdev is not None:
            (real / "vfio-dev" / cdev).mkdir(parents=True)
        return real

    def add_dev_vfio(self, *nodes: str) -> None:
        self.paths.vfio.mkdir(exist_ok=True)
        for node in nodes:
            (self.paths.vfio / node).touch()

    def add_process(self, pid: int, command: str, *open_paths: Path) -> None:
        fd_dir = self.paths.proc / str(pid) / "fd"
        fd_dir.mkdir(parents=True)
        (self.paths.proc / str(pid) / "comm").write_text(command + "\n")
        (fd_dir / "0").symlink_to("/dev/null")
        for n, target in enumerate(open_paths, start=3):
            (fd_dir / str(n)).symlink_to(target)


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return FakeHost(tmp_path)


def _open_error(host: FakeHost, address: str = ADDR, **kw: str) -> VfioHilError:
    with pytest.raises(VfioHilError) as info:
        open_device(address, paths=host.paths, **kw)
    return info.value


# --- addresses ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0000:00:03.0", "0000:00:03.0"),
        ("00:03.0", "0000:00:03.0"),
        ("0000:3B:1F.7", "0000:3b:1f.7"),
        (" 01:00.1\n", "0000:01:00.1"),
        ("10000:e1:00.0", "10000:e1:00.0"),  # Intel VMD domain
    ],
)
def test_parse_address_normalises(text: str, expected: str) -> None:
    assert parse_address(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "0000:00:03", "0000:00:20.0", "0000:00:03.8", "zz:00.0", "000:00:03.0", "0:0:3.0"],
)
def test_malformed_address_shows_the_expected_form(host: FakeHost, text: str) -> None:
    err = _open_error(host, text)
    assert f"malformed PCI address {text!r}" in err.message
    assert "DDDD:BB:DD.F" in err.hint
    assert "BB:DD.F" in err.hint
    assert "lspci -D" in err.hint


# --- sysfs-level failures -------------------------------------------------------
def test_missing_device_names_the_sysfs_path(host: FakeHost) -> None:
    host.add_device("0000:00:04.0")
    err = _open_error(host, "00:03.0")
    assert f"no PCI device {ADDR}" in err.message
    assert str(host.paths.pci_devices / ADDR) in err.message
    assert "lspci -D" in err.hint
    assert "0000:00:04.0" in err.hint  # what *is* bound to vfio-pci


def test_device_bound_elsewhere_gives_the_bind_commands(host: FakeHost) -> None:
    host.add_device(ADDR, driver="e1000e")
    (host.paths.pci_drivers / "vfio-pci").mkdir()
    err = _open_error(host)
    assert f"{ADDR} [1234:11e8] is bound to e1000e, not vfio-pci" in err.message
    dev_dir = host.paths.pci_devices / ADDR
    assert f"echo vfio-pci > {dev_dir}/driver_override" in err.hint
    assert f"echo {ADDR} > {dev_dir}/driver/unbind" in err.hint
    assert f"echo {ADDR} > {host.paths.sys}/bus/pci/drivers_probe" in err.hint
    assert "modprobe" not in err.hint  # vfio-pci is already loaded


def test_unbound_device_without_vfio_pci_loaded(host: FakeHost) -> None:
    host.add_device(ADDR, driver=None)
    err = _open_error(host)
    assert "is not bound to any driver, not vfio-pci" in err.message
    assert err.hint.startswith("as root: modprobe vfio-pci; echo vfio-pci >")
    assert "unbind" not in err.hint  # nothing to unbind


def test_missing_dev_vfio_says_modprobe(host: FakeHost) -> None:
    host.add_device(ADDR)
    err = _open_error(host)
    assert f"{host.paths.vfio} does not exist" in err.message
    assert "modprobe vfio-pci" in err.hint


def test_no_iommu_group_suggests_iommu_or_noiommu(host: FakeHost) -> None:
    host.add_device(ADDR, group=None)
    host.add_dev_vfio()
    err = _open_error(host)
    assert f"{ADDR} has no IOMMU group" in err.message
    assert "intel_iommu=on" in err.hint
    assert "enable_unsafe_noiommu_mode" in err.hint


def test_missing_group_node(host: FakeHost) -> None:
    host.add_device(ADDR)
    host.add_dev_vfio("vfio")
    err = _open_error(host, iommu="group")
    assert f"{host.paths.vfio / '5'}" in err.message
    assert f"{host.paths.vfio / 'noiommu-5'}" in err.message
    assert "ls -l /dev/vfio" in err.hint


def test_unknown_iommu_mode(host: FakeHost) -> None:
    err = _open_error(host, iommu="vfio")
    assert "unknown iommu mode 'vfio'" in err.message
    assert "auto, group, cdev" in err.hint


def test_cdev_mode_without_dev_iommu(host: FakeHost) -> None:
    host.add_device(ADDR, cdev="vfio0")
    host.add_dev_vfio("5", "vfio")
    err = _open_error(host, iommu="cdev")
    assert f"needs {host.paths.iommufd}" in err.message
    assert "modprobe iommufd" in err.hint
    assert "iommu='group'" in err.hint


def test_the_environment_chooses_the_path_when_the_caller_does_not(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    host.add_device(ADDR, cdev="vfio0")
    host.add_dev_vfio("5", "vfio")
    monkeypatch.setenv("VFIO_HIL_IOMMU", "cdev")
    err = _open_error(host)  # no iommu=: the variable asks for the cdev, which needs /dev/iommu
    assert f"needs {host.paths.iommufd}" in err.message


def test_a_bad_path_in_the_environment_names_the_variable(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    host.add_device(ADDR)
    monkeypatch.setenv("VFIO_HIL_IOMMU", "type1")
    err = _open_error(host)
    assert "VFIO_HIL_IOMMU='type1'" in err.message
    assert "unset it" in err.hint


def test_cdev_mode_on_a_noiommu_device_says_to_use_its_group(host: FakeHost) -> None:
    host.add_device(ADDR, cdev="vfio0")
    host.add_dev_vfio("noiommu-5", "vfio")
    (host.paths.dev / "iommu").touch()
    err = _open_error(host, iommu="cdev")
    assert "NOIOMMU mode" in err.message
    assert "iommu='group'" in err.hint


def test_cdev_mode_without_a_cdev(host: FakeHost) -> None:
    host.add_device(ADDR)
    host.add_dev_vfio("5", "vfio")
    (host.paths.dev / "iommu").touch()
    err = _open_error(host, iommu="cdev")
    assert "has no VFIO cdev" in err.message
    assert "vfio-dev" in err.message
    assert "CONFIG_VFIO_DEVICE_CDEV" in err.hint
    assert "iommu='group'" in err.hint


# --- group viability ------------------------------------------------------------
def test_not_viable_names_the_other_devices_and_drivers(host: FakeHost) -> None:
    host.add_device(ADDR, group="7")
    host.add_device("0000:00:03.1", ids=(0x8086, 0x10D3), driver="e1000e", group="7")
    host.add_device("0000:00:03.2", ids=(0x8086, 0x2922), driver=None, group="7")
    dev = read_pci_device(ADDR, host.paths)
    err = hints.not_viable(dev, host.paths)
    assert f"IOMMU group 7 of {ADDR} is not viable" in err.message
    assert "0000:00:03.1 (e1000e)" in err.message
    assert "0000:00:03.2 (no driver)" in err.message
    # The fix names the blocking sibling only, with its exact commands.
    sibling = host.paths.pci_devices / "0000:00:03.1"
    assert f"echo vfio-pci > {sibling}/driver_override" in err.hint
    assert "0000:00:03.2:" not in err.hint
    assert "own IOMMU group" in err.hint


def test_group_members_seen_in_discovery(host: FakeHost) -> None:
    host.add_device(ADDR, group="7", cdev="vfio0")
    host.add_device("0000:00:03.1", driver="pcieport", group="7")
    host.add_device("0000:00:04.0", driver="virtio-pci", group="8")
    found = list_vfio_devices(host.paths)
    assert [d.address for d in found] == [ADDR]
    dev = found[0]
    assert (dev.ids, dev.driver, dev.iommu_group, dev.vfio_cdev) == (
        "1234:11e8",
        "vfio-pci",
        "7",
        "vfio0",
    )
    assert [str(m) for m in dev.group_members] == ["0000:00:03.1 (pcieport)"]
    assert not dev.group_members[0].blocks_group


def test_variant_drivers_count_as_vfio(host: FakeHost) -> None:
    host.add_device(ADDR, driver="mlx5_vfio_pci")
    assert [d.address for d in list_vfio_devices(host.paths)] == [ADDR]


def test_no_pci_bus_lists_nothing(tmp_path: Path) -> None:
    assert list_vfio_devices(HostPaths(tmp_path, tmp_path, tmp_path)) == []


# --- permissions and busy nodes -------------------------------------------------
def test_permission_denied_hints_root_or_udev(host: FakeHost) -> None:
    node = host.paths.vfio / "5"
    err = hints.permission_denied(node)
    assert f"permission denied opening {node}" in err.message
    assert "run as root" in err.hint
    assert f"chown $USER {node}" in err.hint
    assert 'SUBSYSTEM=="vfio"' in err.hint
    noiommu = hints.permission_denied(host.paths.vfio / "noiommu-5", noiommu=True)
    assert "CAP_SYS_RAWIO" in noiommu.message
    assert "root" in noiommu.hint


def test_busy_names_the_holding_process(host: FakeHost) -> None:
    node = host.paths.vfio / "5"
    host.add_process(4242, "qemu-system-x86", node)
    host.add_process(4343, "bash")
    err = hints.busy([node], host.paths.proc, "IOMMU group 5")
    assert "IOMMU group 5 is busy (EBUSY)" in err.message
    assert "pid 4242 (qemu-system-x86)" in err.message
    assert "4343" not in err.message
    assert "stop that process" in err.hint


def test_busy_without_a_visible_holder(host: FakeHost) -> None:
    err = hints.busy([host.paths.vfio / "5"], host.paths.proc, "IOMMU group 5")
    assert "no holder found" in err.message


def test_holder_scan_is_bounded_and_skips_unreadable(host: FakeHost) -> None:
    node = host.paths.vfio / "5"
    (host.paths.proc / "self").mkdir()  # not a pid
    (host.paths.proc / "17").mkdir()  # no fd dir (exited, or not ours)
    host.add_process(18, "vmm", node)
    assert [h.pid for h in find_holders([node], host.paths.proc)] == [18]
    assert find_holders([node], host.root / "no-proc") == []


# --- defaults and closed devices ------------------------------------------------
def test_default_paths_are_overridable(host: FakeHost) -> None:
    previous = set_default_paths(host.paths)
    try:
        assert default_paths() is host.paths
        with pytest.raises(VfioHilError, match="no PCI device"):
            open_device(ADDR)
    finally:
        set_default_paths(previous)
    assert default_paths().sys == Path("/sys")


def test_closed_fd_ioctl_reports_ebadf() -> None:
    """A closed HostDevice's fd is -1: the ioctl layer says EBADF, as the kernel would."""
    from vfio_hil import _ioctl
    from vfio_hil._irq import IrqSet

    with pytest.raises(VfioError) as info:
        _ioctl.device_set_irqs(-1, IrqSet.trigger(0))
    assert info.value.errno == errno.EBADF
    assert info.value.operation == "VFIO_DEVICE_SET_IRQS"


def test_ioctl_errno_is_kept_exactly() -> None:
    """A VFIO ioctl on a non-VFIO fd: the kernel's ENOTTY comes back unchanged."""
    from vfio_hil import _ioctl

    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        with pytest.raises(VfioError) as info:
            _ioctl.device_get_irq_info(fd, 0)
    finally:
        os.close(fd)
    assert info.value.errno == errno.ENOTTY
    assert info.value.operation == "VFIO_DEVICE_GET_IRQ_INFO"
    assert "ENOTTY" in str(info.value)


# --- the edu stimulus's config handling -----------------------------------------
class _Regions:
    """Just enough of a Device for EduStimulus: a config space and BAR0 bytes."""

    name = "regions"

    def __init__(self, command: int) -> None:
        self.mem = {u.VFIO_PCI_CONFIG_REGION_INDEX: bytearray(256), 0: bytearray(256)}
        struct.pack_into("<H", self.mem[u.VFIO_PCI_CONFIG_REGION_INDEX], 4, command)
        self.writes: list[tuple[int, int, bytes]] = []

    def read_region(self, index: int, offset: int, size: int) -> bytes:
        return bytes(self.mem[index][offset : offset + size])

    def write_region(self, index: int, offset: int, data: bytes) -> None:
        self.writes.append((index, offset, data))
        self.mem[index][offset : offset + len(data)] = data


def test_edu_enables_memory_and_master_keeping_intx_disable() -> None:
    regions = _Regions(command=1 << 10)
    stim = EduStimulus(regions)
    stim.raise_irq(0x5)
    stim.clear_irq()
    config = u.VFIO_PCI_CONFIG_REGION_INDEX
    assert regions.writes == [
        (config, 4, struct.pack("<H", (1 << 10) | 0x6)),
        (0, 0x60, struct.pack("<I", 5)),
        (0, 0x64, struct.pack("<I", 0xFFFFFFFF)),
    ]
