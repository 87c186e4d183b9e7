"""``vfio-hil bench lab``: where lab fuzzing spends its time, in one guest.

One boot of the kernel with its agent; for each device the same seeded
examples three ways, one after the other in that guest:

- ``in guest``: the whole fuzzer inside the guest (the agent runs it, as
  ``fuzz --lab K --in-guest`` would), the old 30 ms settle;
- ``host, settle, one step a trip``: hypothesis and the model on the host,
  the device behind the agent, the old settle;
- ``host, one step a trip``: the same with the fuzzer's timing (``timing.FUZZ``);
- ``host``: and ``BATCH`` steps a round trip, as ``fuzz --lab`` runs.

Rates are steps per second of each run; the ratios are against ``in guest``
on the same device in the same guest, so the load on the machine cancels
out as far as it is steady.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from vfio_hil._agent.client import BATCH
from vfio_hil._lab.agent import LabAgent
from vfio_hil._lockstep.timing import SETTLE_S

__all__ = ["Rate", "format_rates", "measure"]


@dataclass(frozen=True)
class Rate:
    device: str
    how: str
    examples: int
    steps: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.steps / self.seconds if self.seconds else 0.0


def _host(
    lab: LabAgent, address: str, examples: int, settle_s: float | None, batch: int = BATCH
) -> Rate:
    from hypothesis import settings

    from vfio_hil.stateful import make_machine

    machine = make_machine(
        functools.partial(lab.channel.open, address), seed=0, export=False, settle_s=settle_s
    )
    lab.channel.batch = batch
    try:
        machine.run(settings(machine.TestCase.settings, max_examples=examples))
    finally:
        lab.channel.batch = BATCH
        machine.close_device()
    stats = machine.stats()
    how = "host" if settle_s is None else "host, settle"
    how += ", one step a trip" if batch == 1 else ""
    return Rate(address, how, stats.examples, stats.steps, stats.seconds)


def measure(lab: LabAgent, examples: int) -> list[Rate]:
    rates = []
    for address in lab.devices:
        inside = lab.channel.call(
            "bench_fuzz", timeout=3600, spec=address, examples=examples, settle_s=SETTLE_S
        )
        rates.append(
            Rate(address, "in guest", inside["examples"], inside["steps"], inside["seconds"])
        )
        rates.append(_host(lab, address, examples, SETTLE_S, batch=1))
        rates.append(_host(lab, address, examples, None, batch=1))
        rates.append(_host(lab, address, examples, None))
    return rates


def format_rates(kernel: str, rates: list[Rate]) -> str:
    lines = [
        f"| {kernel}: device | run | examples | steps | seconds | steps/s | vs in guest |",
        "|---|---|---|---|---|---|---|",
    ]
    base: dict[str, float] = {}
    for r in rates:
        if r.how == "in guest":
            base[r.device] = r.per_second
        ratio = r.per_second / base[r.device] if base.get(r.device) else 0.0
        lines.append(
            f"| {r.device} | {r.how} | {r.examples} | {r.steps} | {r.seconds:.1f} | "
            f"{r.per_second:.0f} | {ratio:.2f}x |"
        )
    return "\n".join(lines)
