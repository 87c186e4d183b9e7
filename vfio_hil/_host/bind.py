"""Hand PCI functions to vfio-pci for a session, and give them back afterwards.

``bind_to_vfio(["0000:01:00.0"])`` does what the shell commands in
docs/devices.md do (driver_override, unbind, drivers_probe), after writing
each device's driver and driver_override to a state file, and waits until
the device is on vfio-pci with its /dev/vfio node.  ``BindSession.restore()``
undoes it, newest first.  A run that dies before restoring leaves the state
file behind; ``restore_stale()`` gives those devices back at the next start.
The state file is ``bind_state``; the sysfs writes are ``bind_sysfs``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

from vfio_hil._errors import VfioHilError
from vfio_hil._host import hints
from vfio_hil._host.bind_state import (
    STATE_ENV,
    VFIO_PCI,
    BindRecord,
    _boot_id,
    _Entry,
    _is_live,
    _Owner,
    _StateFile,
    default_state_file,
)
from vfio_hil._host.bind_sysfs import (
    _driver,
    _noiommu_enabled,
    _poll,
    _probe_path,
    _read_override,
    _vfio_nodes,
    _write,
)
from vfio_hil._host.holders import find_holders
from vfio_hil._host.paths import HostPaths, default_paths
from vfio_hil._host.sysfs import PciDevice, parse_address, read_pci_device

__all__ = [
    "STATE_ENV",
    "BindRecord",
    "BindSession",
    "bind_to_vfio",
    "default_state_file",
    "restore_stale",
]


# --- binding ----------------------------------------------------------------------
def bind_to_vfio(
    addresses: str | Iterable[str],
    *,
    paths: HostPaths | None = None,
    state_file: Path | str | None = None,
    timeout: float = 10.0,
) -> BindSession:
    """Bind each device to vfio-pci; ``restore()`` the returned session to undo it.

    The state file (``default_state_file()`` unless given) gets each
    device's driver and driver_override before anything changes.  A device
    already on vfio-pci (or a variant) is recorded and left alone.  Waits up
    to ``timeout`` seconds for each device (and for ``modprobe vfio-pci``).
    On any failure, what was changed is restored and a VfioHilError says
    what failed and what to do.
    """
    paths = paths or default_paths()
    state = _StateFile(Path(state_file) if state_file is not None else default_state_file())
    wanted = [addresses] if isinstance(addresses, str) else list(addresses)
    normalised = list(dict.fromkeys(parse_address(a) for a in wanted))
    devices = [read_pci_device(a, paths) for a in normalised]
    _check_groups([d for d in devices if not d.bound_to_vfio], set(normalised), paths)
    records = [
        BindRecord(d.address, d.driver, _read_override(paths, d.address), not d.bound_to_vfio)
        for d in devices
    ]
    owner = _Owner.current(paths)
    _record(state, records, owner, paths)
    session = BindSession(records, paths=paths, state=state, session=owner.session, timeout=timeout)
    try:
        changing = [d for d in devices if not d.bound_to_vfio]
        if changing:
            _load_vfio_pci(paths, timeout)
        for dev in changing:
            _check_iommu(dev, paths)
            _bind_one(dev, paths, timeout)
    except BaseException as exc:
        try:
            session.restore()
        except VfioHilError as undo:
            exc.add_note(f"undoing the partial bind failed too: {undo}")
        raise
    return session


def _check_groups(devices: Sequence[PciDevice], wanted: set[str], paths: HostPaths) -> None:
    """Refuse to take one device of a group whose other members have host drivers."""
    for dev in devices:
        blockers = [m for m in dev.group_members if m.blocks_group and m.address not in wanted]
        if not blockers:
            continue
        named = ", ".join(str(m) for m in blockers)
        whole = ", ".join([dev.address, *(m.address for m in blockers)])
        raise VfioHilError(
            f"IOMMU group {dev.iommu_group} of {dev.address} also holds {named}, bound to a"
            f" host driver: binding {dev.address} alone leaves the group not viable, so the"
            " device would be taken from its driver and still be unusable",
            f"bind the whole group together ({whole}) if the host can spare those devices,"
            " or use a device in its own IOMMU group"
            f" (`ls {paths.iommu_groups}/{dev.iommu_group}/devices` lists the group)",
        )


def _record(
    state: _StateFile, records: Sequence[BindRecord], owner: _Owner, paths: HostPaths
) -> None:
    """Merge ``records`` into the state file before anything changes."""
    sys_root = str(paths.sys)
    now = time.time()
    with state.update() as entries:
        for rec in records:
            same = [e for e in entries if (e.sys, e.record.address) == (sys_root, rec.address)]
            if not rec.changed and same:
                continue  # an older entry knows better what the device was before
            live = [e for e in same if _is_live(e, paths)]
            if live:
                raise VfioHilError(
                    f"{rec.address} is not on vfio-pci, but a running vfio-hil process"
                    f" (pid {live[0].pid}) has it in {state.path}: it is binding or"
                    " restoring it right now",
                    "let that run finish (or stop it) before binding the device here",
                )
            entries[:] = [e for e in entries if e not in same]  # stale: what we read now wins
            entries.append(
                _Entry(rec, sys_root, owner.session, owner.pid, owner.pid_start, owner.boot_id, now)
            )


def _load_vfio_pci(paths: HostPaths, timeout: float) -> None:
    """``modprobe vfio-pci`` unless sysfs already lists the driver."""
    driver_dir = paths.pci_drivers / VFIO_PCI
    if driver_dir.is_dir():
        return
    exe = shutil.which("modprobe") or shutil.which("modprobe", path="/usr/sbin:/sbin")
    if exe is None:
        raise VfioHilError(
            f"vfio-pci is not loaded ({driver_dir} is missing) and modprobe was not found",
            "install kmod (`apt-get install kmod`), or load the module yourself as root:"
            " `modprobe vfio-pci`",
        )
    try:
        proc = subprocess.run(
            [exe, VFIO_PCI], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise VfioHilError(
            f"`modprobe vfio-pci` did not finish within {timeout:g} s",
            "see `dmesg | tail`; load the module by hand, then run again",
        ) from exc
    if proc.returncode != 0:
        said = proc.stderr.strip() or proc.stdout.strip() or "no message"
        raise VfioHilError(
            f"`modprobe vfio-pci` failed (exit {proc.returncode}): {said}",
            "run as root; the module ships with the kernel (CONFIG_VFIO_PCI; Debian:"
            " linux-image-*); in a container, load it on the host",
        )
    if not _poll(driver_dir.is_dir, timeout):
        raise VfioHilError(
            f"`modprobe vfio-pci` succeeded but {driver_dir} did not appear",
            "is /sys the host's sysfs? see `dmesg | tail`",
        )


def _check_iommu(dev: PciDevice, paths: HostPaths) -> None:
    """vfio-pci refuses a device without an IOMMU group unless no-IOMMU mode is on."""
    if dev.iommu_group is None and not _noiommu_enabled(paths):
        raise hints.no_iommu_group(dev, paths)


def _bind_one(dev: PciDevice, paths: HostPaths, timeout: float) -> None:
    """driver_override, unbind, drivers_probe; then wait for the driver and the node."""
    address = dev.address
    device_dir = paths.device_dir(address)
    _write(device_dir / "driver_override", VFIO_PCI)
    current = _driver(paths, address)
    if current is not None and current != VFIO_PCI:
        _write(device_dir / "driver" / "unbind", address)
    if _driver(paths, address) is None:
        _write(_probe_path(paths), address)

    seen: list[PciDevice] = []

    def ready() -> bool:
        now = read_pci_device(address, paths)
        seen[:] = [now]
        return now.driver == VFIO_PCI and any(n.exists() for n in _vfio_nodes(now, paths))

    if _poll(ready, timeout):
        return
    now = seen[0]
    if now.driver != VFIO_PCI:
        where = f"bound to {now.driver}" if now.driver else "not bound to any driver"
        raise VfioHilError(
            f"binding {address} to vfio-pci timed out after {timeout:g} s: it is {where}",
            "vfio-pci refused or did not probe it: `dmesg | tail` says why (a device"
            " without an IOMMU group is refused: boot with intel_iommu=on or amd_iommu=on);"
            " vfio-hil has put the device back as it was",
        )
    looked = ", ".join(str(n) for n in _vfio_nodes(now, paths)) or "no group, no cdev"
    raise VfioHilError(
        f"{address} is bound to vfio-pci but no VFIO node appeared within {timeout:g} s"
        f" (looked for {looked})",
        "check `ls -l /dev/vfio` and devtmpfs/udev; in a container, pass /dev/vfio through",
    )


# --- restoring ------------------------------------------------------------------
class BindSession:
    """Devices ``bind_to_vfio`` handled; ``restore()`` (or leaving ``with``) undoes it."""

    def __init__(
        self,
        records: Sequence[BindRecord],
        *,
        paths: HostPaths,
        state: _StateFile,
        session: str,
        timeout: float,
    ) -> None:
        self.records = tuple(records)
        self.paths = paths
        self.state_file = state.path
        self._state = state
        self._session = session
        self._timeout = timeout
        self._done: set[str] = set()

    @property
    def addresses(self) -> list[str]:
        """Every device asked for, normalised, in order."""
        return [r.address for r in self.records]

    @property
    def changed(self) -> list[str]:
        """The devices this session moved to vfio-pci (the ones restore() gives back)."""
        return [r.address for r in self.records if r.changed]

    @property
    def restored(self) -> bool:
        return all(r.address in self._done for r in self.records)

    def restore(self) -> None:
        """Give each changed device back, newest first; idempotent.

        Unbinds it from vfio-pci, restores driver_override and reprobes so its
        driver takes it back (an unbound device stays unbound), then drops its
        entry from the state file (the file goes when empty).  A device that
        cannot be restored keeps its entry and is named in the VfioHilError
        raised after all the others were tried; calling restore() again (or
        restore_stale() in a later run) retries it.
        """
        pending = [r for r in reversed(self.records) if r.address not in self._done]
        if not pending:
            return
        failures = _restore_each([r for r in pending if r.changed], self.paths, self._timeout)
        done = {r.address for r in pending if r.address not in failures}
        keys = {(str(self.paths.sys), a, self._session) for a in done}
        with self._state.update() as entries:
            entries[:] = [e for e in entries if e.key not in keys]
        self._done |= done
        if failures:
            raise _restore_failed(failures, self.state_file)

    def __enter__(self) -> BindSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()

    def __repr__(self) -> str:
        state = "restored" if self.restored else "bound"
        return f"BindSession({', '.join(self.addresses)}; changed: {self.changed}; {state})"


def restore_stale(
    paths: HostPaths | None = None,
    state_file: Path | str | None = None,
    *,
    timeout: float = 10.0,
) -> list[str]:
    """Restore the devices a previous run bound and never gave back; their addresses.

    Entries of a process that still runs are left alone (another session
    uses those devices), and so are entries for another sysfs root.  Entries
    from an earlier boot are dropped without touching the device: the reboot
    already reset its binding.  Raises VfioHilError naming each device that
    could not be restored (its entry stays, to retry next time).
    """
    paths = paths or default_paths()
    state = _StateFile(Path(state_file) if state_file is not None else default_state_file())
    if not state.path.exists():
        return []
    sys_root, boot = str(paths.sys), _boot_id(paths)
    stale = [e for e in state.entries() if e.sys == sys_root and not _is_live(e, paths)]
    todo = [e.record for e in reversed(stale) if e.record.changed and e.boot_id == boot]
    failures = _restore_each(todo, paths, timeout)
    settled = {e.key for e in stale if e.record.address not in failures}
    with state.update() as entries:
        entries[:] = [e for e in entries if e.key not in settled]
    if failures:
        raise _restore_failed(failures, state.path)
    return [r.address for r in todo]


def _restore_each(
    records: Sequence[BindRecord], paths: HostPaths, timeout: float
) -> dict[str, VfioHilError]:
    """Restore every record in order; the failures by address."""
    failures: dict[str, VfioHilError] = {}
    for rec in records:
        try:
            _restore_one(rec, paths, timeout)
        except VfioHilError as exc:
            failures[rec.address] = exc
    return failures


def _restore_one(rec: BindRecord, paths: HostPaths, timeout: float) -> None:
    address = rec.address
    device_dir = paths.device_dir(address)
    if not device_dir.is_dir():
        warnings.warn(
            f"{address} is no longer in {paths.pci_devices}; nothing to restore",
            RuntimeWarning,
            stacklevel=3,
        )
        return
    driver = _driver(paths, address)
    if driver == rec.driver and _read_override(paths, address) == rec.driver_override:
        return  # nothing was changed, or it is already back
    if driver == VFIO_PCI:
        _refuse_if_open(read_pci_device(address, paths), paths)
        _write(device_dir / "driver" / "unbind", address)
    if _read_override(paths, address) != rec.driver_override:
        _write(device_dir / "driver_override", rec.driver_override or "\n")
    if driver not in (None, VFIO_PCI, rec.driver):
        warnings.warn(
            f"{address} is on {driver} now, not on vfio-pci: something else rebound it;"
            f" vfio-hil restored its driver_override and left it there (it was on"
            f" {rec.driver or 'no driver'} before)",
            RuntimeWarning,
            stacklevel=3,
        )
        return
    if rec.driver is not None and _driver(paths, address) is None:
        _write(_probe_path(paths), address)
        original = paths.pci_drivers / rec.driver
        if _driver(paths, address) is None and original.is_dir():
            # Bound by hand (bind or new_id) rather than by id match: bind it the same way.
            with contextlib.suppress(VfioHilError):
                _write(original / "bind", address)
    if _poll(lambda: _driver(paths, address) == rec.driver, timeout):
        return
    now = _driver(paths, address)
    where = f"is bound to {now}" if now else "has no driver"
    if rec.driver is None:
        fix = f"`echo {address} > {device_dir}/driver/unbind`"
    else:
        fix = (
            f"load the module that provides {rec.driver} (often `modprobe {rec.driver}`),"
            f" then `echo {address} > {_probe_path(paths)}`"
        )
    raise VfioHilError(
        f"{address} was on {rec.driver or 'no driver'} before vfio-hil bound it and"
        f" {where} after restoring",
        f"as root: {fix}",
    )


def _refuse_if_open(dev: PciDevice, paths: HostPaths) -> None:
    """Unbinding from vfio-pci blocks until every user closes the device: check first."""
    nodes = [n for n in _vfio_nodes(dev, paths) if n.exists()]
    holders = find_holders(nodes, paths.proc) if nodes else []
    if not holders:
        return
    who = ", ".join(f"{h} (this process)" if h.pid == os.getpid() else str(h) for h in holders)
    raise VfioHilError(
        f"{dev.address} is still open ({', '.join(map(str, nodes))} held by {who}):"
        " unbinding it from vfio-pci would block until it is closed",
        "close the device first (HostDevice.close(), or leave its `with` block) or stop"
        " that process, then restore again",
    )


def _restore_failed(failures: dict[str, VfioHilError], state: Path) -> VfioHilError:
    lines = [f"{address}: {exc.message}" for address, exc in failures.items()]
    fixes = [f"{address}: {exc.hint}" for address, exc in failures.items() if exc.hint]
    return VfioHilError(
        f"could not restore {len(failures)} device(s): " + "; ".join(lines),
        "; ".join(fixes)
        + f". Their entries stay in {state}: restore() or restore_stale() retries them;"
        " delete the file once you have restored them by hand",
    )
