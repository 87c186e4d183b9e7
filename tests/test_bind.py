"""Binding devices to vfio-pci for a session and giving them back, without a device.

The sysfs tree is a directory layout in tmp_path.  ``FakeKernel`` wraps the
one function that writes sysfs (``bind_sysfs._sysfs_write``): it does the write,
then what the kernel would do before the write returns (move the driver
link, create or remove the /dev/vfio node, keep driver_override).
Everything else in vfio_hil._host.bind runs as it does on a real host.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest

from vfio_hil._errors import VfioHilError
from vfio_hil._host import HostPaths, bind, bind_sysfs
from vfio_hil._host.bind import (
    STATE_ENV,
    BindRecord,
    bind_to_vfio,
    default_state_file,
    restore_stale,
)

REAL_WRITE = bind_sysfs._sysfs_write
EDU = "0000:00:03.0"
NIC = "0000:00:04.0"
SATA = "0000:00:1f.2"
PID_START = "4711"


class FakeKernel:
    """A sysfs/dev/proc tree under ``root`` and the kernel's answers to sysfs writes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.paths = HostPaths(root / "sys", root / "dev", root / "proc")
        self.state = root / "state" / "bound.json"
        self.paths.pci_devices.mkdir(parents=True)
        (self.paths.sys / "bus" / "pci" / "drivers_probe").touch()
        self.paths.vfio.mkdir(parents=True)
        self.set_process(os.getpid(), PID_START)
        self.boot("boot-1")
        self.add_driver("vfio-pci")
        self.natural: dict[str, str] = {}  # the driver whose id table matches the device
        self.refuse: set[str] = set()  # devices vfio-pci's probe fails for
        self.deny_writes = False  # the kernel's answer to a user without root
        self.writes: list[tuple[str, str]] = []  # (path relative to sys, text)
        self.state_at_write: list[object] = []  # the state file as each write saw it

    # --- the tree -----------------------------------------------------------------
    def add_driver(self, name: str) -> Path:
        drv = self.paths.pci_drivers / name
        drv.mkdir(parents=True, exist_ok=True)
        for attr in ("bind", "unbind"):
            (drv / attr).touch()
        return drv

    def add_device(
        self,
        address: str,
        *,
        driver: str | None = None,
        natural: str | None = None,
        group: str | None = "5",
        override: str | None = None,
    ) -> None:
        real = self.paths.sys / "devices" / "pci0000:00" / address
        real.mkdir(parents=True)
        (real / "vendor").write_text("0x1234\n")
        (real / "device").write_text("0x11e8\n")
        (real / "driver_override").write_text(f"{override or '(null)'}\n")
        (self.paths.pci_devices / address).symlink_to(real)
        if group is not None:
            members = self.paths.iommu_groups / group / "devices"
            members.mkdir(parents=True, exist_ok=True)
            (members / address).symlink_to(real)
            (real / "iommu_group").symlink_to(self.paths.iommu_groups / group)
        if natural is not None:
            self.natural[address] = natural
        if driver is not None:
            self._attach(address, driver)

    def remove_driver(self, name: str) -> None:
        """rmmod: sysfs no longer lists the driver."""
        drv = self.paths.pci_drivers / name
        for f in drv.iterdir():
            f.unlink()
        drv.rmdir()

    def set_process(self, pid: int, start: str, command: str = "python") -> None:
        proc = self.paths.proc / str(pid)
        (proc / "fd").mkdir(parents=True, exist_ok=True)
        fields = ["S", *["0"] * 18, start, "0"]  # fields 3..23; field 22 is the start time
        (proc / "stat").write_text(f"{pid} ({command}) {' '.join(fields)}\n")
        (proc / "comm").write_text(command + "\n")

    def end_process(self, pid: int) -> None:
        proc = self.paths.proc / str(pid)
        for f in [*(proc / "fd").iterdir(), proc / "stat", proc / "comm"]:
            f.unlink()
        (proc / "fd").rmdir()
        proc.rmdir()

    def boot(self, boot_id: str) -> None:
        f = self.paths.proc / "sys" / "kernel" / "random" / "boot_id"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(boot_id + "\n")

    # --- what a test looks at -----------------------------------------------------
    def driver(self, address: str) -> str | None:
        link = self.paths.device_dir(address) / "driver"
        return os.path.basename(os.readlink(link)) if link.is_symlink() else None

    def override(self, address: str) -> str:
        return (self.paths.device_dir(address) / "driver_override").read_text().strip()

    def node(self, address: str) -> Path:
        group = os.path.basename(os.readlink(self.paths.device_dir(address) / "iommu_group"))
        return self.paths.vfio / group

    def entries(self) -> list[dict[str, object]]:
        if not self.state.exists():
            return []
        devices: list[dict[str, object]] = json.loads(self.state.read_text())["devices"]
        return devices

    # --- the kernel ---------------------------------------------------------------
    def write(self, path: Path, text: str) -> None:
        """bind_sysfs._sysfs_write: the write, then the kernel's reaction to it."""
        self.state_at_write.append(self.entries())
        if self.deny_writes:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        REAL_WRITE(path, text)
        self.writes.append((str(path.relative_to(self.paths.sys)), text))
        if path.name == "driver_override" and not text.strip():
            path.write_text("(null)\n")
        elif path.name == "unbind":
            self._detach(text)
        elif path.name == "drivers_probe":
            self._probe(text)
        elif path.name == "bind":
            self._attach(text, path.parent.name)

    def _probe(self, address: str) -> None:
        if self.driver(address) is not None:
            return
        override = self.override(address)
        wanted = override if override != "(null)" else self.natural.get(address)
        if not wanted or not (self.paths.pci_drivers / wanted).is_dir():
            return
        if wanted != "vfio-pci" or address not in self.refuse:
            self._attach(address, wanted)

    def _attach(self, address: str, driver: str) -> None:
        (self.paths.device_dir(address) / "driver").symlink_to(self.add_driver(driver))
        if driver == "vfio-pci":
            self.node(address).touch()

    def _detach(self, address: str) -> None:
        was = self.driver(address)
        (self.paths.device_dir(address) / "driver").unlink()
        group = self.node(address)
        members = self.paths.iommu_groups / group.name / "devices"
        if was == "vfio-pci" and "vfio-pci" not in map(self.driver, os.listdir(members)):
            group.unlink()  # the last vfio-pci device of the group is gone


@pytest.fixture(autouse=True)
def _no_real_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing here may touch the user's ~/.local/state."""
    monkeypatch.setenv(STATE_ENV, str(tmp_path / "default-state" / "bound.json"))


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKernel:
    fake = FakeKernel(tmp_path / "host")
    monkeypatch.setattr(bind_sysfs, "_sysfs_write", fake.write)
    return fake


def _bind(kernel: FakeKernel, *addresses: str, timeout: float = 2.0) -> bind.BindSession:
    return bind_to_vfio(addresses, paths=kernel.paths, state_file=kernel.state, timeout=timeout)


def _error(kernel: FakeKernel, *addresses: str, timeout: float = 2.0) -> VfioHilError:
    with pytest.raises(VfioHilError) as info:
        _bind(kernel, *addresses, timeout=timeout)
    return info.value


# --- binding ----------------------------------------------------------------------
def test_state_is_recorded_before_the_first_change(kernel: FakeKernel) -> None:
    kernel.add_device(NIC, driver="e1000e", natural="e1000e")
    session = _bind(kernel, "00:04.0")

    assert kernel.driver(NIC) == "vfio-pci"
    assert kernel.node(NIC).exists()
    assert kernel.writes == [
        (f"bus/pci/devices/{NIC}/driver_override", "vfio-pci"),
        (f"bus/pci/devices/{NIC}/driver/unbind", NIC),
        ("bus/pci/drivers_probe", NIC),
    ]
    # Every write, the first included, found the original state already on disk.
    for seen in kernel.state_at_write:
        assert seen == [
            {
                "address": NIC,
                "driver": "e1000e",
                "driver_override": None,
                "changed": True,
                "sys": str(kernel.paths.sys),
                "session": seen[0]["session"],  # type: ignore[index]
                "pid": os.getpid(),
                "pid_start": PID_START,
                "boot_id": "boot-1",
                "recorded_at": seen[0]["recorded_at"],  # type: ignore[index]
            }
        ]
    assert session.changed == [NIC]
    assert session.records == (BindRecord(NIC, "e1000e", None, changed=True),)


def test_restore_gives_the_device_back_and_removes_the_state(kernel: FakeKernel) -> None:
    kernel.add_device(NIC, driver="e1000e", natural="e1000e")
    with _bind(kernel, NIC) as session:
        assert kernel.entries()
        del kernel.writes[:]
    assert session.restored
    assert kernel.driver(NIC) == "e1000e"
    assert kernel.override(NIC) == "(null)"
    assert not kernel.node(NIC).exists()
    assert not kernel.state.exists()
    assert kernel.writes == [
        (f"bus/pci/devices/{NIC}/driver/unbind", NIC),
        (f"bus/pci/devices/{NIC}/driver_override", "\n"),
        ("bus/pci/drivers_probe", NIC),
    ]
    session.restore()  # idempotent: nothing left to do, nothing written
    assert len(kernel.writes) == 3


def test_an_unbound_device_is_left_unbound(kernel: FakeKernel) -> None:
    # e1000e would match it, but somebody unbound it on purpose: restore must not reprobe.
    kernel.add_device(NIC, natural="e1000e")
    session = _bind(kernel, NIC)
    assert kernel.driver(NIC) == "vfio-pci"
    assert [w[0] for w in kernel.writes] == [
        f"bus/pci/devices/{NIC}/driver_override",
        "bus/pci/drivers_probe",
    ]
    session.restore()
    assert kernel.driver(NIC) is None
    assert kernel.override(NIC) == "(null)"
    assert kernel.writes[-1] == (f"bus/pci/devices/{NIC}/driver_override", "\n")


def test_a_driver_override_is_put_back(kernel: FakeKernel) -> None:
    kernel.add_device(NIC, driver="pci-stub", override="pci-stub")
    with _bind(kernel, NIC):
        assert kernel.override(NIC) == "vfio-pci"
    assert (kernel.driver(NIC), kernel.override(NIC)) == ("pci-stub", "pci-stub")


def test_a_device_bound_by_hand_is_bound_back_the_same_way(kernel: FakeKernel) -> None:
    # No id match (new_id or driver/bind did it): drivers_probe alone would leave it unbound.
    kernel.add_device(NIC, driver="e1000e")
    _bind(kernel, NIC).restore()
    assert kernel.driver(NIC) == "e1000e"
    assert kernel.writes[-1] == ("bus/pci/drivers/e1000e/bind", NIC)


@pytest.mark.parametrize("driver", ["vfio-pci", "mlx5_vfio_pci"])
def test_devices_already_on_vfio_are_left_alone(kernel: FakeKernel, driver: str) -> None:
    kernel.add_device(EDU, driver=driver, override="vfio-pci")
    session = _bind(kernel, EDU)
    assert session.changed == []
    assert [(e["address"], e["driver"], e["changed"]) for e in kernel.entries()] == [
        (EDU, driver, False)
    ]
    session.restore()
    assert kernel.writes == []
    assert kernel.driver(EDU) == driver
    assert not kernel.state.exists()


def test_several_devices_are_restored_newest_first(kernel: FakeKernel) -> None:
    kernel.add_device(EDU, group="5")
    kernel.add_device(NIC, driver="e1000e", natural="e1000e", group="6")
    session = _bind(kernel, EDU, NIC)
    assert [e["address"] for e in kernel.entries()] == [EDU, NIC]
    del kernel.writes[:]
    session.restore()
    unbinds = [path for path, _ in kernel.writes if path.endswith("unbind")]
    assert unbinds == [f"bus/pci/devices/{a}/driver/unbind" for a in (NIC, EDU)]
    assert (kernel.driver(EDU), kernel.driver(NIC)) == (None, "e1000e")


def test_sessions_share_the_state_file(kernel: FakeKernel) -> None:
    kernel.add_device(EDU, group="5")
    kernel.add_device(NIC, driver="e1000e", natural="e1000e", group="6")
    first, second = _bind(kernel, EDU), _bind(kernel, NIC)
    assert [e["address"] for e in kernel.entries()] == [EDU, NIC]
    first.restore()
    assert [e["address"] for e in kernel.entries()] == [NIC]
    second.restore()
    assert not kernel.state.exists()


def test_a_whole_group_can_be_bound_together(kernel: FakeKernel) -> None:
    kernel.add_device(NIC, driver="e1000e", natural="e1000e", group="7")
    kernel.add_device(SATA, driver="ahci", natural="ahci", group="7")
    with _bind(kernel, NIC, SATA):
        assert (kernel.driver(NIC), kernel.driver(SATA)) == ("vfio-pci", "vfio-pci")
    assert (kernel.driver(NIC), kernel.driver(SATA)) == ("e1000e", "ahci")


def test_vfio_pci_is_loaded_when_missing(
    kernel: FakeKernel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vfio_pci = kernel.paths.pci_drivers / "vfio-pci"
    kernel.remove_driver("vfio-pci")
    log = tmp_path / "modprobe.log"
    _fake_modprobe(tmp_path, monkeypatch, f'echo "$@" >> {log}; mkdir -p {vfio_pci}; exit 0')
    kernel.add_device(EDU)
    with _bind(kernel, EDU):
        assert kernel.driver(EDU) == "vfio-pci"
    assert log.read_text() == "vfio-pci\n"


def _fake_modprobe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "modprobe"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


# --- errors: what failed and what to do -------------------------------------------
def test_without_root_nothing_changes_and_the_hint_says_root(kernel: FakeKernel) -> None:
    kernel.add_device(NIC, driver="e1000e", natural="e1000e")
    kernel.deny_writes = True
    err = _error(kernel, NIC)
    assert f"permission denied writing {kernel.paths.device_dir(NIC)}/driver_override" in str(err)
    assert "run as root" in err.hint
    assert kernel.driver(NIC) == "e1000e"
    assert not kernel.state.exists()


def test_a_missing_device_is_named_before_anything_is_recorded(kernel: FakeKernel) -> None:
    kernel.add_device(EDU, driver="e1000e")
    err = _error(kernel, EDU, "00:09.0")
    assert f"no PCI device 0000:00:09.0: {kernel.paths.pci_devices}/0000:00:09.0" in err.message
    assert "lspci -D" in err.hint
    assert kernel.writes == []
    assert not kernel.state.exists()


def test_a_malformed_address_shows_the_form(kernel: FakeKernel) -> None:
    err = _error(kernel, "0000:00:3.0")
    assert "malformed PCI address '0000:00:3.0'" in err.message
    assert "0000:00:03.0" in err.hint


def test_a_group_with_host_drivers_is_refused_naming_them(kernel: FakeKernel) -> None:
    kernel.add_device(NIC, driver="e1000e", group="7")
    kernel.add_device(SATA, driver="ahci", group="7")
    kernel.add_device("0000:00:1c.0", driver="pcieport", group="7")  # allowed in a group
    err = _error(kernel, NIC)
    assert f"IOMMU group 7 of {NIC} also holds {SATA} (ahci), bound to a host driver" in str(err)
    assert "not viable" in err.message
    assert "pcieport" not in err.message
    assert f"bind the whole group together ({NIC}, {SATA})" in err.hint
    assert kernel.writes == []
    assert not kernel.state.exists()


def test_a_bind_that_times_out_gives_the_device_back(kernel: FakeKernel) -> None:
    kernel.add_device(NIC, driver="e1000e", natural="e1000e")
    kernel.refuse.add(NIC)  # vfio-pci's probe fails
    err = _error(kernel, NIC, timeout=0.2)
    assert f"binding {NIC} to vfio-pci timed out after 0.2 s: it is not bound to any driver" in (
        err.message
    )
    assert "dmesg" in err.hint
    assert (kernel.driver(NIC), kernel.override(NIC)) == ("e1000e", "(null)")
    assert not kernel.state.exists()


def test_one_failure_undoes_the_devices_already_bound(kernel: FakeKernel) -> None:
    kernel.add_device(EDU, group="5")
    kernel.add_device(NIC, driver="e1000e", natural="e1000e", group="6")
    kernel.refuse.add(NIC)
    err = _error(kernel, EDU, NIC, timeout=0.1)
    assert f"binding {NIC} to vfio-pci timed out" in err.message
    assert (kernel.driver(EDU), kernel.driver(NIC)) == (None, "e1000e")
    assert (kernel.override(EDU), kernel.override(NIC)) == ("(null)", "(null)")
    assert not kernel.state.exists()


def test_a_device_without_iommu_group_is_refused(kernel: FakeKernel) -> None:
    kernel.add_device(NIC, driver="e1000e", group=None)
    err = _error(kernel, NIC)
    assert f"{NIC} has no IOMMU group" in err.message
    assert "intel_iommu=on" in err.hint
    assert "enable_unsafe_noiommu_mode" in err.hint
    assert kernel.driver(NIC) == "e1000e"
    assert not kernel.state.exists()


def test_modprobe_failure_is_reported(
    kernel: FakeKernel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernel.remove_driver("vfio-pci")
    _fake_modprobe(
        tmp_path,
        monkeypatch,
        "echo \"modprobe: ERROR: could not insert 'vfio_pci': Operation not permitted\" >&2;"
        " exit 1",
    )
    kernel.add_device(NIC, driver="e1000e")
    err = _error(kernel, NIC)
    assert "`modprobe vfio-pci` failed (exit 1)" in err.message
    assert "Operation not permitted" in err.message
    assert "run as root" in err.hint
    assert kernel.driver(NIC) == "e1000e"
    assert not kernel.state.exists()


def test_restore_refuses_while_the_device_is_open(kernel: FakeKernel) -> None:
    kernel.add_device(EDU)
    session = _bind(kernel, EDU)
    kernel.set_process(4242, "99", "qemu-system-x86")
    (kernel.paths.proc / "4242" / "fd" / "7").symlink_to(kernel.node(EDU))
    with pytest.raises(VfioHilError) as info:
        session.restore()
    assert f"{EDU} is still open ({kernel.node(EDU)} held by pid 4242 (qemu-system-x86))" in (
        info.value.message
    )
    assert "close the device first" in info.value.hint
    assert kernel.driver(EDU) == "vfio-pci"
    assert [e["address"] for e in kernel.entries()] == [EDU]

    kernel.end_process(4242)
    session.restore()  # retried, now that it is closed
    assert kernel.driver(EDU) is None
    assert not kernel.state.exists()


def test_a_driver_that_does_not_come_back_keeps_its_entry(kernel: FakeKernel) -> None:
    kernel.add_device(NIC, driver="e1000e", natural="e1000e")
    session = _bind(kernel, NIC, timeout=0.2)
    kernel.remove_driver("e1000e")
    with pytest.raises(VfioHilError) as info:
        session.restore()
    err = info.value
    assert f"{NIC} was on e1000e before vfio-hil bound it and has no driver" in err.message
    assert "modprobe e1000e" in err.hint
    assert str(kernel.state) in err.hint
    assert [e["address"] for e in kernel.entries()] == [NIC]

    kernel.add_driver("e1000e")  # modprobe e1000e; the next run cleans up
    kernel.end_process(os.getpid())
    assert restore_stale(kernel.paths, kernel.state) == [NIC]
    assert kernel.driver(NIC) == "e1000e"
    assert not kernel.state.exists()


def test_an_unreadable_state_file_is_named(kernel: FakeKernel) -> None:
    kernel.add_device(EDU)
    kernel.state.parent.mkdir(parents=True)
    kernel.state.write_text("{not json")
    err = _error(kernel, EDU)
    assert f"bind state file {kernel.state} is not readable" in err.message
    assert "delete the file" in err.hint
    assert kernel.writes == []


# --- a crashed run ----------------------------------------------------------------
def test_restore_stale_gives_back_what_a_crashed_run_bound(kernel: FakeKernel) -> None:
    kernel.add_device(EDU, group="5")
    kernel.add_device(NIC, driver="e1000e", natural="e1000e", group="6")
    _bind(kernel, EDU, NIC)  # and the run dies without restoring
    kernel.end_process(os.getpid())

    assert restore_stale(kernel.paths, kernel.state) == [NIC, EDU]
    assert (kernel.driver(EDU), kernel.driver(NIC)) == (None, "e1000e")
    assert not kernel.state.exists()
    assert restore_stale(kernel.paths, kernel.state) == []


def test_restore_stale_reads_the_file_a_crashed_run_left(kernel: FakeKernel) -> None:
    """The file format is the contract between runs: an entry written by hand works."""
    kernel.add_device(NIC, driver="vfio-pci", override="vfio-pci", natural="e1000e")
    kernel.add_driver("e1000e")
    kernel.state.parent.mkdir(parents=True)
    entry = {
        "address": NIC,
        "driver": "e1000e",
        "driver_override": None,
        "changed": True,
        "sys": str(kernel.paths.sys),
        "session": "dead",
        "pid": 999999,
        "pid_start": "1",
        "boot_id": "boot-1",
    }
    kernel.state.write_text(json.dumps({"version": 1, "devices": [entry]}))
    assert restore_stale(kernel.paths, kernel.state) == [NIC]
    assert (kernel.driver(NIC), kernel.override(NIC)) == ("e1000e", "(null)")
    assert not kernel.state.exists()


def test_restore_stale_leaves_a_running_session_alone(kernel: FakeKernel) -> None:
    kernel.add_device(EDU)
    session = _bind(kernel, EDU)
    assert restore_stale(kernel.paths, kernel.state) == []
    assert kernel.driver(EDU) == "vfio-pci"
    kernel.set_process(os.getpid(), "5000")  # the pid now belongs to another process
    assert restore_stale(kernel.paths, kernel.state) == [EDU]
    assert kernel.driver(EDU) is None
    session.restore()  # nothing left for it
    assert kernel.driver(EDU) is None


def test_restore_stale_forgets_entries_from_an_earlier_boot(kernel: FakeKernel) -> None:
    kernel.add_device(EDU)
    _bind(kernel, EDU)
    kernel.boot("boot-2")  # the reboot reset every binding; the device is whatever it is now
    del kernel.writes[:]
    assert restore_stale(kernel.paths, kernel.state) == []
    assert kernel.writes == []
    assert not kernel.state.exists()


def test_restore_stale_only_touches_its_own_sysfs(kernel: FakeKernel, tmp_path: Path) -> None:
    kernel.add_device(EDU)
    _bind(kernel, EDU)
    kernel.end_process(os.getpid())
    other = HostPaths(tmp_path / "other-sys", kernel.paths.dev, kernel.paths.proc)
    assert restore_stale(other, kernel.state) == []
    assert kernel.driver(EDU) == "vfio-pci"
    assert restore_stale(kernel.paths, kernel.state) == [EDU]


def test_a_stale_entry_for_an_already_bound_device_survives_a_new_bind(
    kernel: FakeKernel,
) -> None:
    # The plugin forgot restore_stale(): the new session must not forget the original driver.
    kernel.add_device(NIC, driver="e1000e", natural="e1000e")
    _bind(kernel, NIC)
    kernel.end_process(os.getpid())  # crash
    kernel.set_process(os.getpid(), "6000")  # the next run
    second = _bind(kernel, NIC)
    assert second.changed == []
    second.restore()
    assert kernel.driver(NIC) == "vfio-pci"
    assert restore_stale(kernel.paths, kernel.state) == [NIC]
    assert kernel.driver(NIC) == "e1000e"


# --- where the state lives ----------------------------------------------------------
def test_default_state_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(STATE_ENV, str(tmp_path / "mine.json"))
    assert default_state_file() == tmp_path / "mine.json"
    monkeypatch.delenv(STATE_ENV)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_file() == tmp_path / "xdg" / "vfio-hil" / "bound.json"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert (
        default_state_file() == tmp_path / "home" / ".local" / "state" / "vfio-hil" / "bound.json"
    )


def test_the_default_state_file_is_used(kernel: FakeKernel, tmp_path: Path) -> None:
    kernel.add_device(EDU)
    session = bind_to_vfio([EDU], paths=kernel.paths, timeout=1.0)
    assert (tmp_path / "default-state" / "bound.json").exists()
    session.restore()
    assert not (tmp_path / "default-state" / "bound.json").exists()
