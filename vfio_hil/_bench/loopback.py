"""Loopback round trip (trigger + eventfd read): Python against C, same device.

The Python loop uses a prebuilt ``IrqSet`` and ``EventFd.read``, the hot path
the library promises builds nothing per call.  The C loop (``loopback.c``,
compiled here with gcc against <linux/vfio.h>) gets the same device and
eventfd by inheritance.  The result is the ratio of the two rates.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from vfio_hil._bench.cbuild import compile_c
from vfio_hil._device import Device
from vfio_hil._errors import VfioHilError
from vfio_hil._eventfd import EventFd
from vfio_hil._irq import IrqIndex, IrqSet

__all__ = ["LoopbackResult", "bench_loopback", "compile_baseline"]

SOURCE = Path(__file__).with_name("loopback.c")
RUN_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class LoopbackResult:
    device: str
    iterations: int
    python_per_s: float
    c_per_s: float

    @property
    def ratio(self) -> float:
        return self.python_per_s / self.c_per_s

    def __str__(self) -> str:
        return (
            f"{self.device}: loopback round trips/s: python {self.python_per_s:,.0f}, "
            f"C {self.c_per_s:,.0f}, ratio {self.ratio:.2f} "
            f"(median of rounds of {self.iterations} iterations)"
        )


def compile_baseline(workdir: Path) -> Path:
    return compile_c(SOURCE, workdir)


def _python_loop(device: Device, efd: EventFd, request: IrqSet, n: int) -> tuple[float, int]:
    set_irqs, read = device.set_irqs, efd.read
    signals = 0
    start = time.perf_counter()
    for _ in range(n):
        set_irqs(request)
        signals += read()
    return time.perf_counter() - start, signals


def _c_loop(binary: Path, device_fd: int, efd: EventFd, index: int, n: int) -> float:
    argv = [str(binary), str(device_fd), str(efd.fd), str(index), "0", str(n)]
    done = subprocess.run(
        argv,
        pass_fds=(device_fd, efd.fd),
        check=True,
        timeout=RUN_TIMEOUT_S,
        capture_output=True,
        text=True,
    )
    fields = dict(part.split("=") for part in done.stdout.split())
    if int(fields["signals"]) != n:
        raise RuntimeError(f"C loop saw {fields['signals']} signals for {n} triggers")
    return float(fields["seconds"])


def bench_loopback(
    device: Device, device_fd: int, iterations: int = 10000, rounds: int = 5
) -> LoopbackResult:
    """Alternate Python and C rounds on vector 0 of the first trigger index.

    Rounds interleave so that a noisy neighbour slows both sides alike; the
    reported rates are each side's median round.
    """
    index = next(
        (i for i in (IrqIndex.MSIX, IrqIndex.MSI, IrqIndex.INTX) if device.irq_info(i).count),
        None,
    )
    if index is None:
        raise VfioHilError(f"{device.name} has no INTx, MSI or MSI-X vector to loop back")
    request = IrqSet.trigger(index, 0, 1)
    py_times: list[float] = []
    c_times: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, EventFd() as efd:
        binary = compile_baseline(Path(tmp))
        device.set_irqs(IrqSet.eventfds(index, 0, [efd]))
        try:
            _python_loop(device, efd, request, iterations // 10)  # warm up
            for _ in range(rounds):
                seconds, signals = _python_loop(device, efd, request, iterations)
                if signals != iterations:
                    raise RuntimeError(f"python loop saw {signals} signals for {iterations}")
                py_times.append(seconds)
                c_times.append(_c_loop(binary, device_fd, efd, index, iterations))
        finally:
            device.set_irqs(IrqSet.disable(index))
    return LoopbackResult(
        device.name,
        iterations,
        iterations / statistics.median(py_times),
        iterations / statistics.median(c_times),
    )


def main() -> int:
    from vfio_hil._errors import VfioHilError
    from vfio_hil._host import open_device
    from vfio_hil._targets import env_list

    addresses = env_list("VFIO_HIL_DEVICES") or []
    if not addresses:
        # A setup error (exit 2 through the CLI), not a failed measurement.
        raise VfioHilError(
            "bench loopback needs devices: VFIO_HIL_DEVICES names none",
            "run it in the lab (vfio-hil bench loopback --lab 6.12) or set VFIO_HIL_DEVICES",
        )
    for address in addresses:
        with open_device(address) as dev:
            print(bench_loopback(dev, dev.fd), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
