"""Play one sequence on a device and on its simulated twin, and compare.

After every step both sides must agree on the return value or errno and on
the counter of every eventfd slot.  Signals that the kernel delivers from
interrupt context or a workqueue arrive a little after the ioctl returns,
so steps that can cause them are given a short settle time.
"""

from __future__ import annotations

import errno as _errno
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from vfio_hil import _uapi as u
from vfio_hil._device import Device
from vfio_hil._diff.ops import (
    Clear,
    FdResolver,
    Raise,
    Reopen,
    Reset,
    SetDisIntx,
    SetIrqs,
    Step,
    WriteEventfd,
)
from vfio_hil._errors import VfioError, errno_name
from vfio_hil._eventfd import EventFd

__all__ = [
    "DifferentialRun",
    "Disagreement",
    "LateSignals",
    "Observation",
    "Side",
    "closed_fd_number",
    "read_converging",
]

# Long enough for a TCG guest to take an interrupt; bounded either way.
SETTLE_S = 0.03
CONVERGE_S = 1.0
_INTX_OR_MSI = (0, 1)
_ERR_OR_REQ = (3, 4)
_CMD_INTX_DISABLE = 1 << 10


@dataclass(frozen=True)
class Observation:
    result: int | str  # the return value, or the errno's name
    counters: tuple[int, ...]


@dataclass(frozen=True)
class Disagreement:
    step_no: int
    step: Step
    kernel: Observation
    model: Observation

    def __str__(self) -> str:
        lines = [f"step {self.step_no}: {self.step!r}"]
        if self.kernel.result != self.model.result:
            lines.append(
                f"  kernel returned {self.kernel.result}, model returned {self.model.result}"
            )
        for slot, (k, m) in enumerate(zip(self.kernel.counters, self.model.counters, strict=True)):
            if k != m:
                lines.append(f"  eventfd e{slot}: kernel read {k}, model expected {m}")
        return "\n".join(lines)


class Side:
    """One device and the eventfds, closed number and non-eventfd it uses."""

    def __init__(
        self, device: Device, reopen: Callable[[Device], Device], slots: int, closed_fd: int
    ) -> None:
        self.device = device
        self._reopen = reopen
        self.eventfds = [EventFd() for _ in range(slots)]
        self._not_eventfd = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        self.resolve = FdResolver([e.fd for e in self.eventfds], closed_fd, self._not_eventfd)

    def play(self, step: Step) -> int | str:
        try:
            return self._play(step)
        except VfioError as err:
            return errno_name(err.errno or 0)

    def _play(self, step: Step) -> int:
        dev = self.device
        if isinstance(step, SetIrqs):
            return dev.set_irqs(step.realize(self.resolve))
        if isinstance(step, Raise | Clear):
            stimulus = dev.stimulus
            if stimulus is None:
                raise VfioError(_errno.ENODEV, "stimulus", "this device cannot raise interrupts")
            if isinstance(step, Raise):
                stimulus.raise_irq(step.value)
            else:
                stimulus.clear_irq(step.value)
            return 0
        if isinstance(step, Reset):
            dev.reset()
            return 0
        if isinstance(step, Reopen):
            self.device = self._reopen(dev)
            return 0
        if isinstance(step, WriteEventfd):
            self.eventfds[step.slot].write(1)
            return 0
        cfg = u.VFIO_PCI_CONFIG_REGION_INDEX
        cmd = struct.unpack("<H", dev.read_region(cfg, 4, 2))[0]
        cmd = cmd | _CMD_INTX_DISABLE if step.disable else cmd & ~_CMD_INTX_DISABLE
        dev.write_region(cfg, 4, struct.pack("<H", cmd))
        return 0

    def read(self) -> list[int]:
        return [e.read() for e in self.eventfds]

    def close(self) -> None:
        for efd in self.eventfds:
            efd.close()
        os.close(self._not_eventfd)


class LateSignals:
    """Could the kernel signal after a step returned (IRQ context or workqueue)?

    While the device has raised and not cleared everything, INTx/MSI
    requests, DisINTx writes and reopens can deliver from interrupt context;
    the unmask eventfd's re-fire always runs on a workqueue, also when an
    ERR/REQ loopback signals an eventfd that is the INTx unmask eventfd too
    (virqfd_wakeup() unmasks inside eventfd_signal() and schedules the
    re-fire: found on 7.2.13 in CI, where the read beat the kworker).
    """

    def __init__(self) -> None:
        self.raised = False

    def after(self, step: Step) -> bool:
        if isinstance(step, Raise):
            self.raised = True
        elif isinstance(step, Clear) and step.value & 0xFFFFFFFF == 0xFFFFFFFF:
            self.raised = False
        if isinstance(step, WriteEventfd):
            return True
        if isinstance(step, Raise | SetDisIntx | Reopen):
            return self.raised
        if not (self.raised and isinstance(step, SetIrqs)):
            return False
        return step.index in _INTX_OR_MSI or _is_err_req_loopback(step)


def _is_err_req_loopback(step: SetIrqs) -> bool:
    data = step.flags & u.VFIO_IRQ_SET_DATA_TYPE_MASK
    return (
        step.index in _ERR_OR_REQ
        and step.flags & u.VFIO_IRQ_SET_ACTION_TRIGGER != 0
        and data in (u.VFIO_IRQ_SET_DATA_NONE, u.VFIO_IRQ_SET_DATA_BOOL)
    )


def read_converging(side: Side, expected: list[int] | tuple[int, ...]) -> list[int]:
    """Read ``side``'s counters, waiting (bounded) for any still below ``expected``."""
    got = side.read()
    deadline = time.monotonic() + CONVERGE_S
    while any(g < e for g, e in zip(got, expected, strict=True)) and time.monotonic() < deadline:
        time.sleep(0.005)
        got = [g + n for g, n in zip(got, side.read(), strict=True)]
    return got


def closed_fd_number() -> int:
    """A descriptor number that is not open: the highest the limit allows."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return min(soft, 1 << 20) - 1


class DifferentialRun:
    """A kernel-backed side and a model-backed side, stepped in lockstep."""

    def __init__(self, kernel: Side, model: Side, settle_s: float = SETTLE_S) -> None:
        self.kernel = kernel
        self.model = model
        self.settle_s = settle_s
        self.steps = 0
        self._late = LateSignals()

    def play(self, step: Step) -> Disagreement | None:
        self.steps += 1
        k_result = self.kernel.play(step)
        m_result = self.model.play(step)
        late = self._late.after(step)
        if late:
            time.sleep(self.settle_s)
        expected = self.model.read()
        # Loopback signals are synchronous; only late paths get time to converge.
        got = self._read_kernel_converging(expected) if late else self.kernel.read()
        kernel = Observation(k_result, tuple(got))
        model = Observation(m_result, tuple(expected))
        return None if kernel == model else Disagreement(self.steps, step, kernel, model)

    def clean(self, steps: list[Step]) -> None:
        """Play ``steps`` on both sides uncompared, clear the device, drop counts."""
        for step in steps:
            self.kernel.play(step)
            self.model.play(step)
        for side in (self.kernel, self.model):
            if side.device.stimulus is not None:
                side.play(Clear())
        if self._late.raised:
            time.sleep(self.settle_s)
        self._late.raised = False
        self.kernel.read()
        self.model.read()

    def _read_kernel_converging(self, expected: list[int]) -> list[int]:
        return read_converging(self.kernel, expected)

    def close(self) -> None:
        self.kernel.close()
        self.model.close()
