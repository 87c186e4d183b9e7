"""Lab guests kept for the whole process: what ``lab:KERNEL/DEVICE`` targets open.

The first open of a ``lab:6.12/edu`` target boots 6.12 with its device
agent; later opens of any ``lab:6.12/...`` target reuse that guest.  Every
guest is shut down when the process exits (``close_all``, at exit), and a
guest whose agent is gone (it crashed, it timed out) is booted again at the
next open.
"""

from __future__ import annotations

import atexit
import contextlib
import threading

from vfio_hil._agent.wire import AgentError
from vfio_hil._lab._util import LabError
from vfio_hil._lab.agent import LabAgent, lab_agent
from vfio_hil._lab.qemu import (
    E1000E_ID,
    EDU_ID,
    NVME_ID,
    VIRTIO_RNG_ID,
    XHCI_NEC_ID,
    GuestIommu,
)

__all__ = ["DEVICE_NAMES", "DEVICE_PRESETS", "close_all", "lab_device", "lab_session", "preset_of"]

# What a lab target may call a device instead of its address (nvme-vf: the
# VF, which has its PF's id; the PF is not bound), and the device preset
# whose guest has it (vfio_hil._lab.qemu.PRESETS).
DEVICE_NAMES = {
    "edu": EDU_ID,
    "virtio": VIRTIO_RNG_ID,
    "nvme-vf": NVME_ID,
    "xhci-msi": XHCI_NEC_ID,
    "e1000e": E1000E_ID,
}
DEVICE_PRESETS = {
    "edu": "default",
    "virtio": "default",
    "nvme-vf": "kinds",
    "xhci-msi": "kinds",
    "e1000e": "kinds",
}
# A session's guest may live as long as a test session does.
SESSION_TIMEOUT_S = 6 * 3600.0

_SESSIONS: dict[tuple[str, str, str], tuple[contextlib.ExitStack, LabAgent]] = {}
_LOCK = threading.Lock()


def preset_of(which: str) -> str:
    """The preset whose guest has the device a lab target names (an address: default)."""
    return DEVICE_PRESETS.get(which, "default")


def lab_session(
    kernel_spec: str, iommu: GuestIommu = "intel", devices: str = "default"
) -> LabAgent:
    """This process's guest of ``kernel_spec`` with that platform IOMMU
    (``none``: NOIOMMU mode) and device preset, booted on first use."""
    from vfio_hil._cli.lab import resolve_kernels

    with _LOCK:
        held = _SESSIONS.get((kernel_spec, iommu, devices))
        if held is not None and not held[1].channel.closed:
            return held[1]
        if held is not None:
            held[0].close()
        try:
            kernels = resolve_kernels([kernel_spec])
        except LabError as exc:
            raise AgentError(
                f"lab:{kernel_spec}: {exc}", "vfio-hil lab kernels lists them"
            ) from None
        if len(kernels) != 1:
            names = ", ".join(k.name for k in kernels)
            raise AgentError(
                f"lab:{kernel_spec} names {len(kernels)} kernels ({names})",
                "a lab target names one kernel, e.g. lab:6.12/edu",
            )
        stack = contextlib.ExitStack()
        try:
            lab = stack.enter_context(
                lab_agent(
                    kernels[0],
                    devices=devices,
                    timeout=SESSION_TIMEOUT_S,
                    iommu=iommu,
                    echo=None,
                )
            )
        except LabError as exc:
            stack.close()
            raise AgentError(f"lab:{kernel_spec}: {exc}", "see `vfio-hil lab --help`") from None
        except BaseException:
            stack.close()
            raise
        _SESSIONS[(kernel_spec, iommu, devices)] = (stack, lab)
        return lab


def lab_device(kernel_spec: str, which: str, iommu: GuestIommu = "intel") -> str:
    """The address in ``kernel_spec``'s guest of ``which`` (an address or a name)."""
    lab = lab_session(kernel_spec, iommu, preset_of(which))
    wanted = DEVICE_NAMES.get(which)
    for address, ids in lab.ids.items():
        if address == which or ids == wanted:
            return address
    raise AgentError(
        f"lab:{kernel_spec}/{which}: the guest has no such device",
        f"name one of: {', '.join([*DEVICE_NAMES, *lab.devices])}",
    )


@atexit.register
def close_all() -> None:
    """Shut every session's guest down (the agent exits, the guest powers off)."""
    with _LOCK:
        for stack, _ in _SESSIONS.values():
            with contextlib.suppress(Exception):
                stack.close()
        _SESSIONS.clear()
