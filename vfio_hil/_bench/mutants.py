"""Bug-finding power: run the state machine against every mutant and tabulate.

For each mutant the "kernel" side is a ``SimDevice`` with the reference
model and the "model" side the same device answered by the mutant.  That is
the project's own situation turned around: the kernel is the arbiter and a
disagreement is a model regression, so the counterexample files record the
correct behaviour (replaying them passes on the reference and fails on the
mutant).  Detection is symmetric: a step that differs, differs either way.

    vfio-hil bench mutants [--only NAME]... [--no-shrink] [--seeds K]

With ``--seeds K`` each mutant runs from seeds 0..K-1 (seed 0 is the ``ci``
sample) and the table gives the detection rate: in how many of the K
samples the machine found it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hypothesis import Phase, settings

from vfio_hil._device import Device
from vfio_hil._fuzz.mutants import MUTANTS, Mutant
from vfio_hil._fuzz.profiles import fuzz_settings
from vfio_hil._sim.device import SimDevice
from vfio_hil.stateful import Divergence, make_machine

__all__ = ["BenchRow", "format_rates", "format_table", "run_bench", "run_mutant"]

_NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)
_SHRINK = (*_NO_SHRINK, Phase.target, Phase.shrink)  # no explain phase: it only annotates


@dataclass(frozen=True)
class BenchRow:
    """One mutant's result."""

    mutant: str
    target: str
    detected: bool
    examples: int | None  # examples run up to and including the first failure
    seconds: float | None  # seconds to the first failure
    steps: int | None  # steps played up to the first failure
    shrunk: int | None  # steps in the final (shrunk) counterexample
    total_seconds: float
    error: str = ""  # an exception other than a divergence
    seed: int = 0


def _settings(profile: str | settings, shrink: bool) -> settings:
    base = fuzz_settings(profile) if isinstance(profile, str) else profile
    return settings(base, report_multiple_bugs=False, phases=_SHRINK if shrink else _NO_SHRINK)


def run_mutant(
    mutant: Mutant,
    *,
    profile: str | settings = "ci",
    shrink: bool = True,
    out_dir: Path | None = None,
    seed: int = 0,
) -> BenchRow:
    """Run the machine on ``mutant``'s device against the mutant, drawing from
    ``seed``; never raises for it."""

    def twin(_: Device) -> SimDevice:
        return mutant.device(mutant.model)

    machine = make_machine(
        mutant.device,
        twin,
        profile=None,
        out_dir=out_dir,
        export=out_dir is not None,
        name=f"Bench_{mutant.model.__name__}",
        seed=seed,
    )
    started = time.monotonic()
    error = ""
    try:
        machine.run(_settings(profile, shrink))
    except Divergence:
        pass
    except Exception as exc:  # reported in the table, not raised
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    finally:
        machine.close_device()
    stats = machine.stats()
    first = stats.first_failure
    return BenchRow(
        mutant=mutant.name,
        target=f"{mutant.preset}@{mutant.kernel}",
        detected=first is not None,
        examples=first[0] if first else None,
        seconds=first[1] if first else None,
        steps=first[2] if first else None,
        shrunk=len(stats.final_failure or stats.last_failure) if first else None,
        total_seconds=time.monotonic() - started,
        error=error,
        seed=seed,
    )


def run_bench(
    mutants: Iterable[Mutant] = MUTANTS,
    *,
    profile: str | settings = "ci",
    shrink: bool = True,
    out_dir: Path | None = None,
) -> list[BenchRow]:
    return [run_mutant(m, profile=profile, shrink=shrink, out_dir=out_dir) for m in mutants]


def format_rates(rows: Iterable[BenchRow]) -> str:
    """A Markdown table per mutant over its seeds: found in k of K, and the
    median examples and seconds to the first failure where found."""
    by_mutant: dict[str, list[BenchRow]] = {}
    for row in rows:
        by_mutant.setdefault(row.mutant, []).append(row)
    lines = [
        "| mutant | device | found in seeds | median examples to it | median seconds to it |",
        "|---|---|---|---|---|",
    ]
    for name, runs in by_mutant.items():
        found = [r for r in runs if r.detected]
        rate = f"{len(found)}/{len(runs)}"
        if len(found) < len(runs):
            missed = ", ".join(str(r.seed) for r in runs if not r.detected)
            rate = f"**{rate}** (missed seed {missed})"
        examples = _median([r.examples for r in found if r.examples is not None])
        seconds = _median([r.seconds for r in found if r.seconds is not None])
        lines.append(
            f"| {name} | {runs[0].target} | {rate} | {_cell(examples)} "
            f"| {_cell(seconds, '{:.2f}')} |"
        )
    return "\n".join(lines)


def _median(values: list[float] | list[int]) -> float | int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _cell(value: float | int | None, fmt: str = "{}") -> str:
    return "-" if value is None else fmt.format(value)


def format_table(rows: Iterable[BenchRow]) -> str:
    """A Markdown table: mutant, device, detected, examples/seconds to it, shrunk length."""
    lines = [
        "| mutant | device | detected | examples to first failure | seconds to first failure "
        "| shrunk steps |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        detected = "yes" if row.detected else "**no**"
        if row.error:
            detected += f" ({row.error})"
        lines.append(
            f"| {row.mutant} | {row.target} | {detected} | {_cell(row.examples)} "
            f"| {_cell(row.seconds, '{:.2f}')} | {_cell(row.shrunk)} |"
        )
    return "\n".join(lines)
