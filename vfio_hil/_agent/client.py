"""The host's end of an agent: ``AgentChannel``, ``RemoteDevice``, ``RemoteSide``.

``RemoteDevice`` is the ``Device`` protocol over the channel: each call is
one round trip, bounded by ``CALL_TIMEOUT_S``.  The lockstep engine asks it
for a ``RemoteSide`` (``side_of``), whose ``observe`` plays a whole step in
the agent, next to the device, with the same timing policy: one round trip
per step.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import itertools
import os
import select
import subprocess
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vfio_hil import _uapi as u
from vfio_hil._agent import wire
from vfio_hil._agent.wire import AgentError
from vfio_hil._device import DeviceInfo, Platform, RegionInfo
from vfio_hil._errors import VfioError
from vfio_hil._irq import IrqInfo, IrqInfoFlag, IrqSet
from vfio_hil._lockstep.engine import Expected, Observation, Side
from vfio_hil._lockstep.steps import Step
from vfio_hil._lockstep.timing import Timing

if TYPE_CHECKING:
    from vfio_hil._model.profile import KernelProfile

__all__ = [
    "BATCH",
    "CALL_TIMEOUT_S",
    "AgentChannel",
    "RemoteDevice",
    "RemoteEventFd",
    "RemoteSide",
    "RemoteStimulus",
]

# Longer than any one step can take in a TCG guest (a converge read waits
# at most Timing.converge_s); an agent silent for this long is gone.
CALL_TIMEOUT_S = 60.0
# Steps a fuzzer's round trip carries: a round trip costs about a
# millisecond under TCG, a step a few; past a few dozen nothing is saved.
BATCH = 32


class AgentChannel:
    """Requests to one agent over a pair of file descriptors; answers in order.

    ``where`` names the agent in errors (``lab 6.12``, ``ssh host``).  A call
    that gets no answer within its timeout, or finds the channel closed,
    raises ``AgentError`` and closes the channel: after a lost answer the
    stream cannot be trusted to line up again.
    """

    def __init__(
        self,
        read_fd: int,
        write_fd: int,
        where: str,
        proc: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self._rfd, self._wfd = read_fd, write_fd
        self.where = where
        self._proc = proc
        self._ids = itertools.count(1)
        self._buffer = b""
        self.closed = False
        self._interrupted = False
        self.calls = 0
        self.eventfds: set[int] = set()  # the agent's numbers of RemoteEventFds open
        self.batch = BATCH  # steps a RemoteSide's round trip carries (1: one a trip)

    def call(self, op: str, timeout: float = CALL_TIMEOUT_S, **args: Any) -> Any:
        if self.closed:
            if self._interrupted:
                # Closed by Ctrl-C or SIGTERM: the caller is still unwinding from
                # it, and an AgentError here would read as a new failure
                # (hypothesis would replay the example and call it flaky).
                raise KeyboardInterrupt
            raise wire.AgentError(f"{self.where}: the agent's channel is closed")
        ident = next(self._ids)
        self.calls += 1
        try:
            self._send(wire.encode({"id": ident, "op": op, "args": args}))
            answer = self._receive(op, timeout)
        except BaseException as exc:
            # Interrupted (Ctrl-C, SIGTERM) between request and answer: the
            # answer would be read as the next call's, so nothing more is sent.
            self._interrupted = isinstance(exc, KeyboardInterrupt)
            self.close()
            raise
        if answer.get("id") != ident:
            self.close()
            raise wire.AgentError(f"{self.where}: answer {answer.get('id')} to request {ident}")
        if "error" in answer:
            raise wire.decode_error(answer["error"], self.where)
        return answer.get("ok")

    def _send(self, data: bytes) -> None:
        try:
            while data:
                data = data[os.write(self._wfd, data) :]
        except OSError as exc:
            self.close()
            raise wire.AgentError(f"{self.where}: the agent is gone ({exc.strerror})") from None

    def _receive(self, op: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            ready = select.select([self._rfd], [], [], max(left, 0))[0] if left > 0 else []
            if not ready:
                self.close()
                raise wire.AgentError(
                    f"{self.where}: no answer to {op} within {timeout:.0f} s",
                    "the agent or its guest is stuck; see the guest's console log",
                )
            chunk = os.read(self._rfd, 65536)
            if not chunk:
                self.close()
                raise wire.AgentError(f"{self.where}: the agent closed its channel during {op}")
            self._buffer += chunk
            if len(self._buffer) > wire.MAX_LINE:
                self.close()
                raise wire.AgentError(f"{self.where}: an answer longer than {wire.MAX_LINE}")
        raw, _, self._buffer = self._buffer.partition(b"\n")
        return wire.parse(raw)

    def close(self) -> None:
        """Close the channel; the agent sees it end and exits."""
        if self.closed:
            return
        self.closed = True
        for fd in {self._rfd, self._wfd}:
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def hello(self, timeout: float = CALL_TIMEOUT_S) -> dict[str, Any]:
        """The agent's hello, checked: it must speak this side's protocol."""
        answer: dict[str, Any] = self.call("hello", timeout)
        theirs = answer.get("protocol")
        if theirs != wire.PROTOCOL:
            self.close()
            raise wire.AgentError(
                f"{self.where}: the agent speaks protocol {theirs}, this vfio-hil {wire.PROTOCOL}",
                "install the same vfio-hil version where the agent runs",
            )
        return answer

    def open(self, spec: str) -> RemoteDevice:
        """Open ``spec`` (an address or ``sim:...``) in the agent."""
        return RemoteDevice(self, spec, self.call("open", spec=spec))

    def eventfd(self, initval: int = 0, semaphore: bool = False) -> RemoteEventFd:
        """An eventfd in the agent, for a test's own requests to its devices."""
        efd = RemoteEventFd(
            self, int(self.call("eventfd_open", initval=initval, semaphore=semaphore))
        )
        self.eventfds.add(efd.fd)
        return efd


def _profile(data: dict[str, Any]) -> KernelProfile:
    import dataclasses

    from vfio_hil._model.profile import kernel_spec

    major, minor, patch = (int(v) for v in data["version"])
    return dataclasses.replace(kernel_spec(f"{major}.{minor}.{patch}"), name=str(data["name"]))


class RemoteEventFd:
    """An eventfd in the agent, with ``EventFd``'s interface: ``fd`` is the
    agent's number, so a request that names it means it there."""

    def __init__(self, channel: AgentChannel, fd: int) -> None:
        self._channel = channel
        self._fd = fd

    @property
    def fd(self) -> int:
        if self._fd < 0:
            raise ValueError("EventFd is closed")
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def read(self) -> int:
        return int(self._channel.call("eventfd_read", fd=self.fd))

    def write(self, value: int = 1) -> None:
        self._channel.call("eventfd_write", fd=self.fd, value=value)

    def wait(self, timeout: float) -> int:
        """As ``EventFd.wait``; at most 30 s a call (the agent's bound)."""
        return int(
            self._channel.call("eventfd_wait", CALL_TIMEOUT_S + 30.0, fd=self.fd, seconds=timeout)
        )

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            self._channel.eventfds.discard(fd)
            if not self._channel.closed:
                self._channel.call("eventfd_close", fd=fd)

    def fileno(self) -> int:
        return self.fd

    def __enter__(self) -> RemoteEventFd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteEventFd({self._fd}, {self._channel.where})"


class RemoteStimulus:
    """edu's stimulus, played by the agent."""

    def __init__(self, device: RemoteDevice) -> None:
        self._device = device

    def raise_irq(self, value: int = 1) -> None:
        self._device._call("stimulus", what="raise", value=value)

    def clear_irq(self, value: int = 0xFFFFFFFF) -> None:
        self._device._call("stimulus", what="clear", value=value)

    def status(self) -> int:
        return int(self._device._call("stimulus", what="status"))


class RemoteDevice:
    """A device opened by an agent; the ``Device`` protocol, one round trip a call."""

    def __init__(self, channel: AgentChannel, spec: str, opened: dict[str, Any]) -> None:
        self.channel = channel
        self.spec = spec
        self._handle = int(opened["handle"])
        self._name = f"{opened['name']} ({channel.where})"
        self._kernel = _profile(opened["kernel"])
        self._platform = Platform(**opened["platform"])
        self._stimulus = RemoteStimulus(self) if opened["edu"] else None
        self._closed = False
        # What the report header says of it: the driver there, and where.
        self.driver = f"{opened.get('driver', '?')} via {channel.where}"
        self.group = str(opened.get("group", "?"))
        self.iommu = str(opened.get("iommu", "?"))  # the open path there

    def _call(self, op: str, **args: Any) -> Any:
        if self._closed:
            raise VfioError(_errno.EBADF, op, f"{self._name} is closed")
        return self.channel.call(op, device=self._handle, **args)

    @property
    def name(self) -> str:
        return self._name

    @property
    def stimulus(self) -> RemoteStimulus | None:
        return self._stimulus

    @property
    def kernel(self) -> KernelProfile:
        return self._kernel

    @property
    def platform(self) -> Platform:
        return self._platform

    def info(self) -> DeviceInfo:
        return DeviceInfo(*self._call("info"))

    def irq_info(self, index: int) -> IrqInfo:
        number, flags, count = self._call("irq_info", index=int(index))
        return IrqInfo(number, IrqInfoFlag(flags), count)

    def set_irqs(self, irqset: IrqSet) -> int:
        """The request's bytes as given.  Eventfds of this process mean nothing
        to the agent (the number would name one of its own files): a request
        that assigns any is refused; a ``RemoteSide`` names eventfds by slot."""
        if irqset.data_type == u.VFIO_IRQ_SET_DATA_EVENTFD:
            foreign = [fd for fd in irqset.fds if fd >= 0 and fd not in self.channel.eventfds]
            if foreign:
                raise AgentError(
                    f"{self._name}: {irqset!r} names fd {foreign[0]}, which is no eventfd "
                    "the agent made: this process's eventfds mean nothing there",
                    "make the eventfds with the device's eventfd() (the plugin's eventfds "
                    "fixture does), or drive it through fuzz, diff, replay or scenarios",
                )
        return int(
            self._call(
                "set_irqs",
                flags=irqset.flags,
                index=irqset.index,
                start=irqset.start,
                count=irqset.count,
                data=wire.value_out(irqset.data),
                argsz=irqset.argsz,
            )
        )

    def reset(self) -> None:
        self._call("reset")

    def region_info(self, index: int) -> RegionInfo:
        return RegionInfo(*self._call("region_info", index=index))

    def read_region(self, index: int, offset: int, size: int) -> bytes:
        data: bytes = wire.value_in(
            self._call("read_region", index=index, offset=offset, size=size)
        )
        return data

    def write_region(self, index: int, offset: int, data: bytes) -> None:
        self._call("write_region", index=index, offset=offset, data=wire.value_out(bytes(data)))

    def quiesce(self) -> bool:
        return bool(self._call("quiesce"))

    def reopen(self) -> RemoteDevice:
        self._call("reopen")
        return self

    def close(self) -> None:
        if self._closed or self.channel.closed:
            self._closed = True
            return
        self._closed = True
        self.channel.call("close", device=self._handle)

    def eventfd(self, initval: int = 0, semaphore: bool = False) -> RemoteEventFd:
        """An eventfd next to the device, for this device's requests."""
        return self.channel.eventfd(initval, semaphore)

    def eventfd_id(self, fd: int) -> str:
        """The identity of the agent's eventfd ``fd`` ("" if it is none)."""
        return str(self.channel.call("eventfd_id", fd=fd))

    def side(self, slots: int) -> RemoteSide:
        return RemoteSide(self, slots)

    def __enter__(self) -> RemoteDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteDevice({self._name})"


class RemoteSide(Side):
    """A ``Side`` whose eventfds and plays live in the agent, beside the device.

    ``batch``: steps a round trip carries (the channel's ``batch``).
    """

    def __init__(self, device: RemoteDevice, slots: int) -> None:
        # Not Side.__init__: the eventfds, the closed number and the
        # non-eventfd are the agent's; nothing here is opened locally.
        self.device = device
        self._remote = device
        self.batch = device.channel.batch
        self._side = int(device._call("side_open", slots=slots))

    def _side_call(self, op: str, **args: Any) -> Any:
        return self._remote.channel.call(op, side=self._side, **args)

    def call(self, step: Step) -> tuple[int | str, tuple[int, int] | None]:
        result, info = self._side_call("side_call", step=wire.encode_step(step))
        return result, None if info is None else (int(info[0]), int(info[1]))

    def command(self, step: Step) -> int | None:
        value = self._side_call("side_command", step=wire.encode_step(step))
        return None if value is None else int(value)

    def read(self) -> list[int]:
        return [int(v) for v in self._side_call("side_read")]

    def after_read(self, step: Step) -> None:
        self._side_call("side_after_read", step=wire.encode_step(step))

    def clean(self, steps: Sequence[Step], settle_s: float = 0.0) -> None:
        self._side_call("side_clean", steps=[wire.encode_step(s) for s in steps], settle_s=settle_s)

    def observe(
        self, step: Step, late: bool, expected: Sequence[int], timing: Timing
    ) -> Observation:
        answer = self._side_call(
            "side_observe",
            step=wire.encode_step(step),
            late=late,
            expected=list(expected),
            timing=wire.encode_timing(timing),
        )
        return wire.decode_observation(answer)

    def observe_many(self, items: Sequence[Expected]) -> list[Observation]:
        """``Side.observe_many`` in the agent: one round trip for the batch.
        Its bound grows with the batch: each step may wait out its timing."""
        if not items:
            return []
        budget = sum(i.timing.settle_s + i.timing.converge_s for i in items if i.late)
        answer = self._remote.channel.call(
            "side_observe_many",
            CALL_TIMEOUT_S + budget,
            side=self._side,
            items=[wire.encode_expected(i) for i in items],
        )
        return [wire.decode_observation(a) for a in answer]

    def close(self) -> None:
        if not self._remote.channel.closed:
            self._side_call("side_close")
