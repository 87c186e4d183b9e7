"""A lab guest that serves its devices to the host: ``lab_agent``.

The guest runs ``vfio-hil agent --port vfio_hil.agent``; QEMU connects that
virtio-serial port to a unix socket on the host.  The host then runs
hypothesis, the model and the comparison at native speed and sends the
guest only what must happen next to the device (``vfio_hil._agent``).

Nothing outlives the ``with``: leaving it closes the channel, the agent
exits, the guest's command ends and the guest shuts down; a guest that does
not within ``STOP_GRACE_S`` is killed, as it is on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from vfio_hil._agent.client import AgentChannel
from vfio_hil._agent.wire import AgentError
from vfio_hil._lab._util import LabError, log
from vfio_hil._lab.kernels import Kernel
from vfio_hil._lab.qemu import AGENT_PORT, GuestIommu, agent_port_args, get_preset, kill_group
from vfio_hil._lab.run import (
    DEFAULT_TIMEOUT_S,
    LabResult,
    _sigterm_unwinds,
    check_iommu,
    pick_accel,
    results_root,
    run_one,
)

__all__ = ["LabAgent", "lab_agent"]

# How long a guest may take from QEMU's start to the agent's first answer
# (TCG on a loaded 2-core host boots in 20-60 s).
BOOT_TIMEOUT_S = 300.0
STOP_GRACE_S = 60.0


@dataclass
class LabAgent:
    """A running guest's agent: its channel and the devices the lab bound."""

    kernel: Kernel
    channel: AgentChannel
    devices: list[str]
    release: str
    ids: dict[str, str] = field(default_factory=dict)  # address -> vendor:device
    result: LabResult | None = None  # set when the guest has ended

    @property
    def where(self) -> str:
        return self.channel.where


@contextlib.contextmanager
def lab_agent(
    kernel: Kernel,
    *,
    accel: str = "auto",
    devices: str = "default",
    timeout: float = DEFAULT_TIMEOUT_S,
    results_dir: Path | None = None,
    memory: str = "2G",
    cpus: int = 2,
    iommu: GuestIommu = "intel",
    echo: IO[str] | None = sys.stdout,
) -> Iterator[LabAgent]:
    """Boot ``kernel`` with its agent and yield it; judge the guest at the end.

    After the ``with`` the ``LabAgent.result`` says how the guest ended
    (kernel findings from its console included); a guest failure there is
    the caller's to report.
    """
    preset = get_preset(devices)
    check_iommu(kernel, iommu)
    with _sigterm_unwinds():
        chosen = pick_accel(accel, kernel)
        root = results_root(results_dir)
        # A short path: a unix socket's name is limited to 107 bytes.
        sockdir = Path(tempfile.mkdtemp(prefix="vh-agent-", dir="/tmp"))
        sock_path = sockdir / "s"
        started: list[subprocess.Popen[bytes]] = []
        outcome: list[LabResult] = []
        command = [sys.executable, "-m", "vfio_hil", "agent", "--port", AGENT_PORT]

        def guest() -> None:
            outcome.append(
                run_one(
                    kernel,
                    command,
                    accel=chosen,
                    preset=preset,
                    results_root=root,
                    timeout=timeout,
                    memory=memory,
                    cpus=cpus,
                    iommu=iommu,
                    echo=echo,
                    extra_qemu_args=agent_port_args(sock_path),
                    on_start=started.append,
                )
            )

        thread = threading.Thread(target=guest, name=f"lab-{kernel.name}", daemon=True)
        thread.start()
        channel: AgentChannel | None = None
        lab: LabAgent | None = None
        try:
            channel = _connect(sock_path, thread, f"lab {kernel.name}")
            hello = channel.hello(timeout=BOOT_TIMEOUT_S)
            lab = LabAgent(
                kernel,
                channel,
                list(hello["devices"]),
                str(hello["release"]),
                dict(hello.get("ids") or {}),
            )
            named = ", ".join(lab.devices) or "no devices"
            log(f"{kernel.name}: agent up ({hello['release']}): {named}")
            yield lab
        finally:
            if channel is not None:
                channel.close()  # the agent sees its port close and exits
            # Interrupted: the user wants out now; otherwise the guest shuts down cleanly.
            interrupted = sys.exc_info()[0] is not None
            grace = 1.0 if channel is None else 10.0 if interrupted else STOP_GRACE_S
            thread.join(timeout=grace)
            if thread.is_alive():
                for proc in started:
                    kill_group(proc)
                thread.join(timeout=STOP_GRACE_S)
            shutil.rmtree(sockdir, ignore_errors=True)
            if lab is not None and outcome:
                lab.result = outcome[0]
                log(lab.result.summary() + (f" [{lab.result.error}]" if lab.result.error else ""))


def _connect(path: Path, guest: threading.Thread, where: str) -> AgentChannel:
    """Connect to QEMU's socket for the agent's port once QEMU has made it."""
    deadline = time.monotonic() + BOOT_TIMEOUT_S
    while time.monotonic() < deadline:
        if not guest.is_alive():
            raise LabError(f"{where}: the guest ended before its agent's socket appeared")
        if path.exists():
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(path))
            except OSError:
                sock.close()
            else:
                fd = sock.detach()
                return AgentChannel(fd, fd, where)
        time.sleep(0.1)
    raise AgentError(f"{where}: QEMU made no socket for the agent within {BOOT_TIMEOUT_S:.0f} s")
