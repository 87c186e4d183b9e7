"""Which processes hold a path open: a bounded scan of /proc/*/fd.

Used only to explain EBUSY ("another process holds /dev/vfio/5: pid 4242
(qemu-system-x86)"), so it gives up quietly on anything it cannot read and
stops after a fixed number of processes or a short deadline.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Holder", "find_holders"]

MAX_PROCESSES = 4096
MAX_FDS_PER_PROCESS = 4096
DEADLINE_S = 0.5


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.command})"


def _command(proc_dir: Path) -> str:
    try:
        return (proc_dir / "comm").read_text().strip() or "?"
    except OSError:
        return "?"


def _holds(fd_dir: Path, targets: frozenset[str], deadline: float) -> bool:
    try:
        with os.scandir(fd_dir) as entries:
            for n, entry in enumerate(entries):
                if n >= MAX_FDS_PER_PROCESS or time.monotonic() > deadline:
                    return False
                try:
                    if os.readlink(entry.path) in targets:
                        return True
                except OSError:
                    continue  # the fd closed meanwhile
    except OSError:
        pass  # process gone, or not ours to read
    return False


def find_holders(paths: Iterable[Path], proc: Path = Path("/proc")) -> list[Holder]:
    """Processes with any of ``paths`` open (as far as /proc lets us see)."""
    targets = frozenset(str(p) for p in paths)
    deadline = time.monotonic() + DEADLINE_S
    found: list[Holder] = []
    try:
        pids = sorted(int(n) for n in os.listdir(proc) if n.isdigit())
    except OSError:
        return found
    for pid in pids[:MAX_PROCESSES]:
        if time.monotonic() > deadline:
            break
        proc_dir = proc / str(pid)
        if _holds(proc_dir / "fd", targets, deadline):
            found.append(Holder(pid, _command(proc_dir)))
    return found
