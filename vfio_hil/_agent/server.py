"""The device agent: opens devices where they are and plays steps on request.

It runs where the devices are (a lab guest, a machine with real devices)
and talks over one byte stream: a virtio-serial port to the lab's host, or
stdin/stdout under SSH.  It keeps nothing between runs, listens on nothing,
and exits when its channel closes; every device it opened is left with
``close_clean`` on the way out.

What it executes is the engine's own code: a ``Side`` (eventfds, slot
names, PCI_COMMAND reads) and the ``Timing`` policy run here, next to the
device, so a late signal is waited for with the same rule as in-process and
one round trip carries one whole lockstep step (``side_observe``).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from vfio_hil._agent import wire
from vfio_hil._device import Device, close_clean
from vfio_hil._eventfd import EventFd
from vfio_hil._irq import IrqSet
from vfio_hil._lockstep.engine import Side

__all__ = ["Agent", "serve"]


class Agent:
    """The agent's state: open devices and sides, by handle."""

    def __init__(self) -> None:
        self.devices: dict[int, Device] = {}
        self.sides: dict[int, tuple[int, Side]] = {}  # side -> (device handle, Side)
        self.eventfds: dict[int, EventFd] = {}  # the host's tests' eventfds, by number
        self._next = 1

    def _handle(self) -> int:
        self._next += 1
        return self._next - 1

    def _device(self, args: dict[str, Any]) -> Device:
        try:
            return self.devices[int(args["device"])]
        except KeyError:
            raise wire.AgentError(f"no open device {args.get('device')!r}") from None

    def _side(self, args: dict[str, Any]) -> Side:
        try:
            return self.sides[int(args["side"])][1]
        except KeyError:
            raise wire.AgentError(f"no side {args.get('side')!r}") from None

    # --- ops ----------------------------------------------------------------
    def op_hello(self, args: dict[str, Any]) -> dict[str, Any]:
        from vfio_hil._targets import env_list

        devices = env_list("VFIO_HIL_DEVICES") or []
        return {
            "protocol": wire.PROTOCOL,
            "release": os.uname().release,
            "devices": devices,
            "ids": {address: _pci_ids(address) for address in devices},
            "pid": os.getpid(),
        }

    def op_open(self, args: dict[str, Any]) -> dict[str, Any]:
        from vfio_hil._targets import parse_target

        device = parse_target(str(args["spec"])).open()
        handle = self._handle()
        self.devices[handle] = device
        platform = device.platform
        pci = getattr(device, "pci", None)  # a HostDevice's sysfs view
        return {
            "handle": handle,
            "name": device.name,
            "driver": pci.driver if pci is not None else "simulated",
            "group": str(pci.iommu_group) if pci is not None else "-",
            "iommu": str(getattr(device, "iommu", "-")),
            "kernel": {"name": device.kernel.name, "version": list(device.kernel.version)},
            "platform": {
                "intx_level_at_enable": platform.intx_level_at_enable,
                "pci_2_3": platform.pci_2_3,
                "host_vectors": platform.host_vectors,
                "multi_msi": platform.multi_msi,
            },
            "edu": device.stimulus is not None,
        }

    def op_info(self, args: dict[str, Any]) -> list[int]:
        info = self._device(args).info()
        return [info.flags, info.num_regions, info.num_irqs]

    def op_irq_info(self, args: dict[str, Any]) -> list[int]:
        info = self._device(args).irq_info(int(args["index"]))
        return [info.index, int(info.flags), info.count]

    def op_set_irqs(self, args: dict[str, Any]) -> int:
        request = IrqSet.raw(
            int(args["flags"]),
            int(args["index"]),
            int(args["start"]),
            int(args["count"]),
            wire.value_in(args["data"]),
            args.get("argsz"),
        )
        return int(self._device(args).set_irqs(request))

    def op_reset(self, args: dict[str, Any]) -> None:
        self._device(args).reset()

    def op_region_info(self, args: dict[str, Any]) -> list[int]:
        r = self._device(args).region_info(int(args["index"]))
        return [r.index, r.flags, r.size, r.offset]

    def op_read_region(self, args: dict[str, Any]) -> Any:
        data = self._device(args).read_region(
            int(args["index"]), int(args["offset"]), int(args["size"])
        )
        return wire.value_out(data)

    def op_write_region(self, args: dict[str, Any]) -> None:
        data = wire.value_in(args["data"])
        self._device(args).write_region(int(args["index"]), int(args["offset"]), data)

    def op_stimulus(self, args: dict[str, Any]) -> int:
        stimulus = self._device(args).stimulus
        if stimulus is None:
            raise wire.AgentError("this device has no stimulus")
        what = args["what"]
        if what == "raise":
            stimulus.raise_irq(int(args["value"]))
        elif what == "clear":
            stimulus.clear_irq(int(args["value"]))
        else:
            return stimulus.status()
        return 0

    def op_reopen(self, args: dict[str, Any]) -> None:
        handle = int(args["device"])
        self.devices[handle] = self._device(args).reopen()
        for side_handle, (dev, side) in self.sides.items():
            if dev == handle:
                side.device = self.devices[handle]
                self.sides[side_handle] = (dev, side)

    def op_quiesce(self, args: dict[str, Any]) -> bool:
        return self._device(args).quiesce()

    def op_close(self, args: dict[str, Any]) -> None:
        handle = int(args["device"])
        for side_handle in [s for s, (dev, _) in self.sides.items() if dev == handle]:
            self.sides.pop(side_handle)[1].close()
        device = self.devices.pop(handle, None)
        if device is not None:
            close_clean(device) if args.get("clean") else device.close()

    # --- eventfds of the host's own tests (RemoteEventFd) ------------------
    def op_eventfd_open(self, args: dict[str, Any]) -> int:
        efd = EventFd(int(args.get("initval", 0)), bool(args.get("semaphore", False)))
        self.eventfds[efd.fd] = efd
        return efd.fd

    def _eventfd(self, args: dict[str, Any]) -> EventFd:
        try:
            return self.eventfds[int(args["fd"])]
        except KeyError:
            raise wire.AgentError(f"no eventfd {args.get('fd')!r} of the host's") from None

    def op_eventfd_read(self, args: dict[str, Any]) -> int:
        return self._eventfd(args).read()

    def op_eventfd_write(self, args: dict[str, Any]) -> None:
        self._eventfd(args).write(int(args.get("value", 1)))

    def op_eventfd_wait(self, args: dict[str, Any]) -> int:
        return self._eventfd(args).wait(min(float(args["seconds"]), 30.0))

    def op_eventfd_id(self, args: dict[str, Any]) -> str:
        from vfio_hil._sim.eventfds import _eventfd_id

        fd = int(args["fd"])  # any number: the mirror asks about every fd of a request
        return _eventfd_id(fd) if fd in self.eventfds else ""

    def op_eventfd_close(self, args: dict[str, Any]) -> None:
        efd = self.eventfds.pop(int(args["fd"]), None)
        if efd is not None:
            efd.close()

    def op_side_open(self, args: dict[str, Any]) -> int:
        handle = int(args["device"])
        side = Side(self._device(args), int(args["slots"]))
        side_handle = self._handle()
        self.sides[side_handle] = (handle, side)
        return side_handle

    def _after_side(self, args: dict[str, Any], side: Side) -> None:
        # A Reopen step gave the side a new device object: the handle follows it.
        handle = self.sides[int(args["side"])][0]
        self.devices[handle] = side.device

    def op_side_call(self, args: dict[str, Any]) -> list[Any]:
        side = self._side(args)
        result, info = side.call(wire.decode_step(args["step"]))
        self._after_side(args, side)
        return [result, None if info is None else list(info)]

    def op_side_command(self, args: dict[str, Any]) -> int | None:
        return self._side(args).command(wire.decode_step(args["step"]))

    def op_side_read(self, args: dict[str, Any]) -> list[int]:
        return self._side(args).read()

    def op_side_after_read(self, args: dict[str, Any]) -> None:
        self._side(args).after_read(wire.decode_step(args["step"]))

    def op_side_clean(self, args: dict[str, Any]) -> None:
        side = self._side(args)
        try:
            side.clean(
                [wire.decode_step(s) for s in args["steps"]], min(float(args["settle_s"]), 1.0)
            )
        finally:
            self._after_side(args, side)

    def op_side_observe_many(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        side = self._side(args)
        items = [wire.decode_expected(item) for item in args["items"]]
        try:
            seen = side.observe_many(items)
        finally:
            self._after_side(args, side)  # a Reopen in the batch: the handle follows
        return [wire.encode_observation(obs) for obs in seen]

    def op_side_observe(self, args: dict[str, Any]) -> dict[str, Any]:
        side = self._side(args)
        timing = wire.decode_timing(args["timing"])
        obs = side.observe(
            wire.decode_step(args["step"]), bool(args["late"]), args["expected"], timing
        )
        self._after_side(args, side)
        return wire.encode_observation(obs)

    def op_side_close(self, args: dict[str, Any]) -> None:
        entry = self.sides.pop(int(args["side"]), None)
        if entry is not None:
            entry[1].close()

    def op_bench_fuzz(self, args: dict[str, Any]) -> dict[str, Any]:
        """The whole fuzzer here, next to the device (``vfio-hil bench lab``'s
        in-guest baseline): seeded examples, their steps and seconds."""
        from hypothesis import settings

        from vfio_hil._targets import parse_target
        from vfio_hil.stateful import make_machine

        target = parse_target(str(args["spec"]))
        machine = make_machine(target.open, seed=0, export=False, settle_s=float(args["settle_s"]))
        try:
            machine.run(settings(machine.TestCase.settings, max_examples=int(args["examples"])))
        finally:
            machine.close_device()
        stats = machine.stats()
        return {"examples": stats.examples, "steps": stats.steps, "seconds": stats.seconds}

    def close(self) -> None:
        """Leave every device as a new user expects it, close everything."""
        for _, side in self.sides.values():
            with contextlib.suppress(Exception):
                side.close()
        self.sides.clear()
        for device in self.devices.values():
            with contextlib.suppress(Exception):
                close_clean(device)
        self.devices.clear()
        for efd in self.eventfds.values():
            efd.close()
        self.eventfds.clear()

    def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        """One request's answer (an error is an answer too)."""
        ident = message.get("id")
        op: Callable[[dict[str, Any]], Any] | None = getattr(self, f"op_{message.get('op')}", None)
        try:
            if op is None:
                raise wire.AgentError(f"unknown operation {message.get('op')!r}")
            return {"id": ident, "ok": op(message.get("args") or {})}
        except Exception as exc:  # every failure goes back to the caller, named
            return {"id": ident, "error": wire.encode_error(exc)}


def _pci_ids(address: str) -> str:
    """``vendor:device`` of a device here, as sysfs has them ("" for a sim: spec)."""
    ids = []
    for name in ("vendor", "device"):
        try:
            with open(f"/sys/bus/pci/devices/{address}/{name}") as f:
                ids.append(f.read().strip().removeprefix("0x"))
        except OSError:
            return ""
    return ":".join(ids)


class _HostGoneError(Exception):
    """The host closed the channel or stopped reading it."""


class _Stream:
    """Lines in, lines out, over file descriptors; no wait is unbounded but
    the one for the next request (the host may think for as long as it likes).

    A virtio-serial port reads as ended while no host is connected and blocks
    writes while none is: ``wait_for_host`` ignores an end before the first
    request (QEMU starts before the host connects), and a write that cannot
    go out within ``WRITE_TIMEOUT_S`` means the host is gone.
    """

    def __init__(self, read_fd: int, write_fd: int, wait_for_host: bool) -> None:
        self._rfd, self._wfd = read_fd, write_fd
        self._waiting = wait_for_host
        self._buffer = b""

    def request(self) -> bytes:
        started = time.monotonic()
        while b"\n" not in self._buffer:
            poller = select.poll()
            poller.register(self._rfd, select.POLLIN)
            poller.poll()
            try:
                chunk = os.read(self._rfd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                if self._waiting and time.monotonic() - started < HOST_WAIT_S:
                    time.sleep(0.2)  # no host yet on the port's other end
                    continue
                raise _HostGoneError
            self._waiting = False
            self._buffer += chunk
            if len(self._buffer) > wire.MAX_LINE:
                raise wire.AgentError(f"a request longer than {wire.MAX_LINE} bytes")
        raw, _, self._buffer = self._buffer.partition(b"\n")
        return raw

    def send(self, data: bytes) -> None:
        poller = select.poll()
        poller.register(self._wfd, select.POLLOUT)
        while data:
            ready = poller.poll(WRITE_TIMEOUT_S * 1000)
            if not ready or ready[0][1] & (select.POLLHUP | select.POLLERR):
                raise _HostGoneError
            try:
                data = data[os.write(self._wfd, data) :]
            except BlockingIOError:
                continue
            except OSError:  # EPIPE: the reader is gone
                raise _HostGoneError from None


# How long an agent on a port waits for its host to connect, and for its
# host to take an answer (it reads them at once when it is alive).
HOST_WAIT_S = 600.0
WRITE_TIMEOUT_S = 30.0


def serve(read_fd: int, write_fd: int, *, wait_for_host: bool = False) -> None:
    """Answer requests from ``read_fd`` on ``write_fd`` until the host is gone."""
    agent = Agent()
    stream = _Stream(read_fd, write_fd, wait_for_host)
    try:
        while True:
            try:
                answer = agent.handle(wire.parse(stream.request()))
            except wire.AgentError as exc:
                answer = {"id": None, "error": wire.encode_error(exc)}
            stream.send(wire.encode(answer))
    except _HostGoneError:
        return  # the channel closed: the host is done, or dead
    finally:
        agent.close()


def main(port: str | None) -> int:
    """``vfio-hil agent``: serve on a virtio-serial port by name, or stdin/stdout."""
    # Its life is its channel's: a Ctrl-C at the host's terminal reaches this
    # child too, and must not end it in the middle of an answer.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if port is None:
        # stdout carries answers only: anything printed goes to stderr.
        out = os.dup(sys.stdout.fileno())
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        serve(sys.stdin.fileno(), out)
        return 0
    # A virtio-serial port opens once (EBUSY after): one fd both ways.
    fd = os.open(virtio_port(port), os.O_RDWR | os.O_CLOEXEC)
    try:
        serve(fd, fd, wait_for_host=True)
    finally:
        os.close(fd)
    return 0


def virtio_port(name: str, sys_class: str = "/sys/class/virtio-ports") -> str:
    """``/dev/vportNpM`` of the virtio-serial port called ``name``."""
    with contextlib.suppress(OSError):
        for entry in sorted(os.listdir(sys_class)):
            with contextlib.suppress(OSError), open(f"{sys_class}/{entry}/name") as f:
                if f.read().strip() == name:
                    return f"/dev/{entry}"
    raise wire.AgentError(
        f"no virtio-serial port named {name!r} in {sys_class}",
        "the agent's port is added by the lab (vfio-hil lab); elsewhere run the agent "
        "without --port, over stdin/stdout",
    )
