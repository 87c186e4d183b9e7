"""The bind state file: what each device was bound to before a session took it.

A run that dies before restoring leaves it behind; ``restore_stale()`` (in
``bind``) reads it at the next start.  Entries name their owner (boot id,
pid and its start time), so a live session's devices are never taken back.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vfio_hil._errors import VfioHilError
from vfio_hil._host.paths import HostPaths

VFIO_PCI = "vfio-pci"
STATE_ENV = "VFIO_HIL_BIND_STATE"
_STATE_VERSION = 1
_LOCK_WAIT_S = 5.0


# --- the state file -------------------------------------------------------------
def default_state_file() -> Path:
    """``$VFIO_HIL_BIND_STATE``, else ``${XDG_STATE_HOME:-~/.local/state}/vfio-hil/bound.json``."""
    explicit = os.environ.get(STATE_ENV, "")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_STATE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "state"
    return base / "vfio-hil" / "bound.json"


@dataclass(frozen=True)
class BindRecord:
    """One device as it was before ``bind_to_vfio``.

    ``changed`` is False for a device that was already on vfio-pci (or a
    variant driver): vfio-hil leaves it alone and never restores it.
    """

    address: str
    driver: str | None
    driver_override: str | None
    changed: bool


@dataclass(frozen=True)
class _Entry:
    """A BindRecord in the state file, with who wrote it."""

    record: BindRecord
    sys: str  # the sysfs root the address belongs to
    session: str
    pid: int
    pid_start: str | None  # /proc/PID/stat starttime: a reused pid is not us
    boot_id: str | None  # sysfs bindings do not survive a reboot
    recorded_at: float

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.sys, self.record.address, self.session)

    def to_json(self) -> dict[str, Any]:
        fields = asdict(self)
        return {**fields.pop("record"), **fields}

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> _Entry:
        record = BindRecord(
            address=str(item["address"]),
            driver=_opt_str(item["driver"]),
            driver_override=_opt_str(item["driver_override"]),
            changed=bool(item["changed"]),
        )
        return cls(
            record=record,
            sys=str(item["sys"]),
            session=str(item["session"]),
            pid=int(item["pid"]),
            pid_start=_opt_str(item.get("pid_start")),
            boot_id=_opt_str(item.get("boot_id")),
            recorded_at=float(item.get("recorded_at", 0.0)),
        )


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class _Owner:
    """This process, as the state file identifies it."""

    session: str
    pid: int
    pid_start: str | None
    boot_id: str | None

    @classmethod
    def current(cls, paths: HostPaths) -> _Owner:
        pid = os.getpid()
        return cls(uuid.uuid4().hex, pid, _pid_start(paths, pid), _boot_id(paths))


def _boot_id(paths: HostPaths) -> str | None:
    try:
        return (paths.proc / "sys" / "kernel" / "random" / "boot_id").read_text().strip()
    except OSError:
        return None


def _pid_start(paths: HostPaths, pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (start time in ticks since boot), or None."""
    try:
        stat = (paths.proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # fields 3.. ; comm may hold spaces
    return fields[19] if len(fields) > 19 else None


def _is_live(entry: _Entry, paths: HostPaths) -> bool:
    """The process that wrote ``entry`` still runs (same boot, same process)."""
    if entry.boot_id != _boot_id(paths):
        return False
    start = _pid_start(paths, entry.pid)
    return start is not None and start == entry.pid_start


class _StateFile:
    """The JSON list of bound devices: read-modify-write under a lock, atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def entries(self) -> list[_Entry]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self._unusable(exc) from exc
        try:
            document = json.loads(text)
            if document.get("version") != _STATE_VERSION:
                raise ValueError(f"version {document.get('version')!r}")
            return [_Entry.from_json(item) for item in document["devices"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise VfioHilError(
                f"vfio-hil's bind state file {self.path} is not readable: {exc!r}",
                "it lists devices to give back to their drivers: fix it by hand, or restore"
                " them yourself (docs/devices.md) and delete the file",
            ) from exc

    @contextlib.contextmanager
    def update(self) -> Iterator[list[_Entry]]:
        """Yield the entries under the lock; what the caller leaves in the list is written."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise self._unusable(exc) from exc
        try:
            self._lock(lock)
            entries = self.entries()
            yield entries
            self._write(entries)
        finally:
            os.close(lock)

    def _lock(self, fd: int) -> None:
        deadline = time.monotonic() + _LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise VfioHilError(
                        f"{self.path.parent} stayed locked for {_LOCK_WAIT_S:g} s",
                        "another vfio-hil process is updating its bind state; try again, or"
                        f" point {STATE_ENV} at a file of your own",
                    ) from None
                time.sleep(0.02)

    def _write(self, entries: list[_Entry]) -> None:
        try:
            if not entries:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                return
            document = {
                "version": _STATE_VERSION,
                "about": "PCI devices vfio-hil bound to vfio-pci, as they were before;"
                " restore_stale() gives them back",
                "devices": [e.to_json() for e in entries],
            }
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
            with open(tmp, "w") as f:
                f.write(json.dumps(document, indent=2) + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            raise self._unusable(exc) from exc

    def _unusable(self, exc: OSError) -> VfioHilError:
        return VfioHilError(
            f"cannot use the bind state file {self.path}: {exc}",
            f"set {STATE_ENV} to a writable path (it records what to restore after a crash)",
        )
