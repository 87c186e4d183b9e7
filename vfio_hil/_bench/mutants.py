"""Bug-finding power: run the state machine against every mutant and tabulate.

For each mutant the "kernel" side is a ``SimDevice`` with the reference
model and the "model" side the same device answered by the mutant.  That is
the project's own situation turned around: the kernel is the arbiter and a
disagreement is a model regression, so the counterexample files record the
correct behaviour (replaying them passes on the reference and fails on the
mutant).  Detection is symmetric: a step that differs, differs either way.

    vfio-hil bench mutants [--only NAME]... [--no-shrink]
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from vfio_hil._device import Device
from vfio_hil._fuzz.mutants import MUTANTS, Mutant
from vfio_hil._fuzz.profiles import fuzz_settings
from vfio_hil._sim.device import SimDevice
from vfio_hil.stateful import Divergence, make_machine

__all__ = ["BenchRow", "format_table", "run_bench", "run_mutant"]

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


def _settings(profile: str | settings, shrink: bool) -> settings:
    base = fuzz_settings(profile) if isinstance(profile, str) else profile
    return settings(base, report_multiple_bugs=False, phases=_SHRINK if shrink else _NO_SHRINK)


def run_mutant(
    mutant: Mutant,
    *,
    profile: str | settings = "ci",
    shrink: bool = True,
    out_dir: Path | None = None,
) -> BenchRow:
    """Run the machine on ``mutant``'s device against the mutant; never raises for it."""

    def twin(_: Device) -> SimDevice:
        return mutant.device(mutant.model)

    machine = make_machine(
        mutant.device,
        twin,
        profile=None,
        out_dir=out_dir,
        export=out_dir is not None,
        name=f"Bench_{mutant.model.__name__}",
    )
    started = time.monotonic()
    error = ""
    try:
        run_state_machine_as_test(machine, settings=_settings(profile, shrink))
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
    )


def run_bench(
    mutants: Iterable[Mutant] = MUTANTS,
    *,
    profile: str | settings = "ci",
    shrink: bool = True,
    out_dir: Path | None = None,
) -> list[BenchRow]:
    return [run_mutant(m, profile=profile, shrink=shrink, out_dir=out_dir) for m in mutants]


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
