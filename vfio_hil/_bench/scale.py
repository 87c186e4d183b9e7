"""Scale: enable, trigger and read every MSI-X vector of a device; Python against C.

One round, on N vectors of the MSI-X index (default: all the device has; the
lab's ``scale`` preset has 2048):

- ``enable``: one SET_IRQS TRIGGER|EVENTFD over 0..N-1, an eventfd each;
- ``trigger``: one SET_IRQS TRIGGER|DATA_NONE over 0..N-1;
- ``read``: read every eventfd, each must hold exactly 1;
- ``bool``: one SET_IRQS TRIGGER|DATA_BOOL over 0..N-1, every byte 1;
- ``bool read``: read every eventfd again, each exactly 1;
- ``disable``: TRIGGER|DATA_NONE count 0.

The Python round uses the library's hot path: ``IrqSet``s built once before
the rounds and ``read_counters`` over the ``EventFd``s.  The C round
(``scale.c``, compiled here with gcc against <linux/vfio.h>) gets the same
device and eventfds by inheritance, so both take exactly the same kernel
path.  Rounds alternate (a noisy neighbour slows both alike); each phase's
figure is its median round.  A simulated device (``--sim``) has no fd to
hand over: it is measured in Python only.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vfio_hil._bench.cbuild import compile_c
from vfio_hil._device import Device
from vfio_hil._errors import VfioError, VfioHilError
from vfio_hil._eventfd import EventFd, read_counters
from vfio_hil._irq import IrqIndex, IrqSet

__all__ = ["LAB_CPUS", "PHASES", "ScaleResult", "bench_scale", "largest_msix", "main", "run"]

SOURCE = Path(__file__).with_name("scale.c")
RUN_TIMEOUT_S = 300.0  # one C process: two rounds of six calls, minutes only under TCG
PHASES = ("enable", "trigger", "read", "bool", "bool_read", "disable")
_LABELS = {
    "enable": "enable (TRIGGER|EVENTFD)",
    "trigger": "trigger (DATA_NONE)",
    "read": "read, each 1",
    "bool": "trigger (DATA_BOOL)",
    "bool_read": "read, each 1",
    "disable": "disable (count 0)",
}
GOAL = 3.0  # Python within 3x of C
# An x86 CPU has about 200 interrupt vectors for devices, and the kernel gives
# every enabled MSI-X vector one: 2048 need 11 CPUs or more (2 fit ~400).
LAB_CPUS = 16


@dataclass(frozen=True)
class ScaleResult:
    """Median seconds per phase; ``c_s`` is None for a device with no fd."""

    device: str
    vectors: int
    rounds: int
    python_s: dict[str, float]
    c_s: dict[str, float] | None

    @property
    def python_total(self) -> float:
        return sum(self.python_s.values())

    @property
    def c_total(self) -> float | None:
        return None if self.c_s is None else sum(self.c_s.values())

    def ratio(self, phase: str | None = None) -> float | None:
        """Python's time over C's for ``phase`` (None: the whole round)."""
        if self.c_s is None:
            return None
        py = self.python_total if phase is None else self.python_s[phase]
        c = self.c_total if phase is None else self.c_s[phase]
        return py / c if c else None

    def __str__(self) -> str:
        rows = [
            f"{self.device}: {self.vectors} MSI-X vectors, median of {self.rounds} rounds "
            "(ms; every eventfd read exactly 1 after each trigger)",
            f"  {'phase':<26} {'python':>10} {'C':>10} {'python/C':>9}",
        ]
        for phase in (*PHASES, None):
            py = self.python_total if phase is None else self.python_s[phase]
            c = self.c_total if phase is None else (self.c_s or {}).get(phase)
            ratio = self.ratio(phase)
            rows.append(
                f"  {'total' if phase is None else _LABELS[phase]:<26} {py * 1e3:>10.3f} "
                f"{'-' if c is None else f'{c * 1e3:.3f}':>10} "
                f"{'-' if ratio is None else f'{ratio:.2f}':>9}"
            )
        return "\n".join(rows)


def compile_baseline(workdir: Path) -> Path:
    return compile_c(SOURCE, workdir)


def msix_vectors(device: Device) -> int:
    return device.irq_info(IrqIndex.MSIX).count


def _room_for(fds: int) -> None:
    """Raise the soft open-file limit so ``fds`` eventfds fit (1024 is common)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = fds + 64  # the device, the interpreter's own, the child's pipes
    if soft != resource.RLIM_INFINITY and soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            raise VfioHilError(
                f"{fds} eventfds do not fit the open-file limit (hard limit {hard})",
                f"raise it (ulimit -Hn {wanted}) or give fewer --vectors",
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _python_round(
    device: Device, fds: list[EventFd], requests: dict[str, IrqSet]
) -> tuple[dict[str, float], int]:
    set_irqs, clock, n = device.set_irqs, time.perf_counter, len(fds)
    enable, trigger, bools, disable = (requests[k] for k in ("enable", "trigger", "bool", "off"))
    t0 = clock()
    set_irqs(enable)
    t1 = clock()
    set_irqs(trigger)
    t2 = clock()
    bad = n - read_counters(fds).count(1)
    t3 = clock()
    set_irqs(bools)
    t4 = clock()
    bad += n - read_counters(fds).count(1)
    t5 = clock()
    set_irqs(disable)
    t6 = clock()
    times = (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)
    return dict(zip(PHASES, times, strict=True)), bad


def _warm_up(device: Device, fds: list[EventFd], requests: dict[str, IrqSet]) -> None:
    """One Python round, not counted; an enable the kernel has no room for is
    a setup error that says what to do."""
    try:
        _python_round(device, fds, requests)
    except VfioError as err:
        if err.errno != errno.ENOSPC:
            raise
        cpus = os.cpu_count() or 1
        raise VfioHilError(
            f"enabling {len(fds)} MSI-X vectors of {device.name} failed with ENOSPC: the kernel "
            f"has no interrupt vector left for each (about 200 per x86 CPU; {cpus} CPUs here)",
            "give fewer --vectors, or boot with more CPUs (the lab's --cpus 16 fits 2048)",
        ) from None


def _c_round(binary: Path, device_fd: int, fds: list[EventFd]) -> tuple[dict[str, float], int]:
    """Two rounds in one C process; the second counts (the first warms it up)."""
    numbers = [e.fd for e in fds]
    argv = [str(binary), str(device_fd), str(int(IrqIndex.MSIX)), str(len(fds)), "2"]
    done = subprocess.run(
        argv,
        input="\n".join(map(str, numbers)) + "\n",
        pass_fds=(device_fd, *numbers),
        timeout=RUN_TIMEOUT_S,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the C loop exited {done.returncode}: {done.stderr.strip()}")
    warm, counted = (
        dict(part.split("=") for part in line.split()) for line in done.stdout.splitlines()
    )
    bad = int(warm["bad"]) + int(counted["bad"])
    return {phase: float(counted[phase]) for phase in PHASES}, bad


def bench_scale(
    device: Device, device_fd: int | None, vectors: int | None = None, rounds: int = 5
) -> tuple[ScaleResult, int]:
    """Alternate Python and C rounds on ``vectors`` MSI-X vectors (default:
    all); the result and how many eventfd reads were not exactly 1."""
    total = msix_vectors(device)
    if total == 0:
        raise VfioHilError(
            f"{device.name} has no MSI-X vectors: bench scale needs an MSI-X device",
            "give one with --device, or run it in the lab (vfio-hil bench scale --lab 6.12)",
        )
    n = total if vectors is None else vectors
    if not 1 <= n <= total:
        raise VfioHilError(
            f"--vectors {n} does not fit {device.name}'s MSI-X table of {total}",
            f"give 1 to {total}, or leave --vectors out for all of them",
        )
    _room_for(n)
    fds = [EventFd() for _ in range(n)]
    try:
        requests = {
            "enable": IrqSet.eventfds(IrqIndex.MSIX, 0, fds),
            "trigger": IrqSet.trigger(IrqIndex.MSIX, 0, n),
            "bool": IrqSet.trigger_bool(IrqIndex.MSIX, 0, [1] * n),
            "off": IrqSet.disable(IrqIndex.MSIX),
        }
        py_rounds: list[dict[str, float]] = []
        c_rounds: list[dict[str, float]] = []
        bad = 0
        with tempfile.TemporaryDirectory() as tmp:
            binary = None if device_fd is None else compile_baseline(Path(tmp))
            try:
                _warm_up(device, fds, requests)
                for _ in range(rounds):
                    times, missed = _python_round(device, fds, requests)
                    py_rounds.append(times)
                    bad += missed
                    if binary is not None and device_fd is not None:
                        times, missed = _c_round(binary, device_fd, fds)
                        c_rounds.append(times)
                        bad += missed
            finally:  # a round that failed half-way leaves the index enabled
                with contextlib.suppress(VfioError):
                    device.set_irqs(requests["off"])
    finally:
        for efd in fds:
            efd.close()
    result = ScaleResult(
        device.name,
        n,
        rounds,
        _medians(py_rounds),
        _medians(c_rounds) if c_rounds else None,
    )
    return result, bad


def _medians(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {phase: statistics.median(r[phase] for r in rounds) for phase in PHASES}


def largest_msix(addresses: Sequence[str]) -> str:
    """The device of ``addresses`` with the most MSI-X vectors."""
    from vfio_hil._host import open_device

    sizes = {}
    for address in addresses:
        with open_device(address) as dev:
            sizes[address] = msix_vectors(dev)
    best = max(addresses, key=lambda a: sizes[a])
    if not sizes[best]:
        raise VfioHilError(
            f"none of {', '.join(addresses)} has MSI-X vectors: bench scale needs an MSI-X device",
            "run it in the lab on the scale preset (vfio-hil bench scale --lab 6.12)",
        )
    return best


def run(
    device: str | None = None, sim: str | None = None, vectors: int | None = None, rounds: int = 5
) -> int:
    """Measure one device (a PCI address, a ``sim:`` spec, or the largest MSI-X
    table of ``VFIO_HIL_DEVICES``) and print the figures; an exit code."""
    from vfio_hil._exit import Exit
    from vfio_hil._host import open_device
    from vfio_hil._targets import env_list, parse_target

    if sim is not None:
        target = parse_target(f"sim:{sim.removeprefix('sim:')}")
        with target.open() as dev:
            result, bad = bench_scale(dev, None, vectors, rounds)
    else:
        if device is None:
            addresses = env_list("VFIO_HIL_DEVICES") or []
            if not addresses:
                raise VfioHilError(
                    "bench scale needs a device: VFIO_HIL_DEVICES names none",
                    "give --device ADDRESS or --sim virtio_msix_2048, "
                    "or run it in the lab (vfio-hil bench scale --lab 6.12)",
                )
            device = largest_msix(addresses)
        with open_device(device) as dev:
            result, bad = bench_scale(dev, dev.fd, vectors, rounds)
    print(result, flush=True)
    ratio = result.ratio()
    if ratio is not None:
        verdict = "within" if ratio <= GOAL else "NOT within"
        print(f"python/C over the whole round: {ratio:.2f} ({verdict} the goal of {GOAL:g}x)")
    if bad:
        print(f"FAILED: {bad} eventfd reads were not exactly 1", flush=True)
        return Exit.FAILED
    print(f"every one of the {result.vectors} eventfds read exactly 1 after each trigger")
    return Exit.OK


def main(argv: Sequence[str] | None = None) -> int:
    from vfio_hil._cli.bench import add_scale_arguments
    from vfio_hil._exit import Exit

    parser = argparse.ArgumentParser(prog="python -m vfio_hil._bench.scale")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--device", metavar="ADDRESS", help="a device bound to vfio-pci")
    where.add_argument("--sim", metavar="PRESET[:VECTORS][@KERNEL]", help="a simulated device")
    add_scale_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args.device, args.sim, args.vectors, args.rounds)
    except VfioHilError as exc:
        print(f"bench scale: error: {exc}", file=sys.stderr, flush=True)
        return Exit.USAGE


if __name__ == "__main__":
    raise SystemExit(main())
