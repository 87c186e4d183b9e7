"""Counterexamples that travel: a scenario file and a C program per failing run.

The expectations are what the *kernel* side returned and signalled, so
replaying the file on a correct device passes and on the buggy one fails
(docs/scenarios.md is the format; ``vfio-hil replay FILE`` plays it).  The C
program (``vfio_hil._fuzz.creplay``) replays the same ioctls on a real
device with nothing but libc and ``<linux/vfio.h>``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path

from vfio_hil._diff.cases import SLOTS
from vfio_hil._fuzz.facts import DeviceFacts
from vfio_hil._irq import IrqIndex
from vfio_hil._lockstep import Observation, Played
from vfio_hil._lockstep.steps import (
    BarWrite,
    Clear,
    Raise,
    Reset,
    Step,
)
from vfio_hil._scenario.discover import MARKER_LINE
from vfio_hil._scenario.write import args, index_name, step_yaml

__all__ = ["scenario_text", "write_counterexample"]


def _expect(seen: Observation) -> str | None:
    signals = {f"e{k}": n for k, n in enumerate(seen.counters) if n}
    fields: dict[str, str] = {}
    if isinstance(seen.result, str):
        fields["errno"] = seen.result
    elif seen.result or not signals:
        fields["return"] = str(seen.result)
    if signals:
        fields["signals"] = args(**{k: str(n) for k, n in signals.items()})
    if seen.command is not None:
        fields["command"] = f"{seen.command:#06x}"
    if seen.info is not None:
        fields["info"] = args(flags=f"{seen.info[0]:#x}", count=str(seen.info[1]))
    if fields == {"return": "0"}:
        return None
    return args(**fields)


def _requires(facts: DeviceFacts, steps: Sequence[Step]) -> str:
    counts = facts.counts
    fields: dict[str, str] = {}
    single = [index_name(i) for i in (IrqIndex.INTX, IrqIndex.ERR, IrqIndex.REQ) if counts.get(i)]
    if single:
        fields["irq"] = "[" + ", ".join(single) + "]"
    for key, index in (("msi", IrqIndex.MSI), ("msix", IrqIndex.MSIX)):
        if counts.get(index):
            fields[key] = str(counts[index])
    if any(isinstance(s, Raise | Clear | BarWrite) for s in steps):
        fields["stimulus"] = "true"
    fields["pcie"] = "true" if facts.pcie else "false"
    if counts.get(IrqIndex.MSIX):
        fields["dyn_msix"] = "true" if facts.dyn_msix else "false"
    if any(isinstance(s, Reset) for s in steps):
        fields["reset"] = "true" if facts.can_reset else "false"
    # Expectations past an index's end hold for exactly these counts.
    fields["counts"] = args(**{index_name(i): str(n) for i, n in sorted(counts.items())})
    fields["kernel"] = '"==' + ".".join(map(str, facts.kernel.version)) + '"'
    return args(**fields)


def _replay_target(facts: DeviceFacts) -> str:
    """The ``replay`` option that names this device (or one like it)."""
    kernel = facts.kernel.name
    if facts.name.startswith("sim:virtio_msix"):
        return f"--sim virtio_msix:{facts.counts.get(IrqIndex.MSIX, 0)}@{kernel}"
    if facts.name.startswith("sim:"):
        return f"--sim {facts.name.removeprefix('sim:')}@{kernel}"
    return f"--device {facts.name}"


def scenario_text(trace: Sequence[Played], facts: DeviceFacts, why: str) -> str:
    """The scenario file for ``trace`` (the last step is where the sides differed)."""
    counts = ", ".join(f"{index_name(i)}={n}" for i, n in sorted(facts.counts.items()))
    lines = [
        MARKER_LINE,
        "# Found by vfio-hil's differential fuzzer (vfio_hil.stateful); the",
        "# expectations are what the kernel side did, so a correct device passes.",
        f"# Device: {facts.name}, kernel {facts.kernel.name}; GET_IRQ_INFO counts: {counts}.",
        "# requires: names exactly these counts; a device with them:",
        f"#   vfio-hil replay FILE {_replay_target(facts)}",
        *(f"# {line}" for line in why.splitlines()),
        "name: " + json.dumps(f"fuzz counterexample on {facts.name} ({len(trace)} steps)"),
        f"requires: {_requires(facts, [p.step for p in trace])}",
        f"eventfds: {SLOTS}",
        "steps:",
    ]
    for played in trace:
        step, expect = step_yaml(played.step), _expect(played.kernel)
        if expect is None:
            lines.append(f"  - {step}")
            continue
        # A bare "- reset" cannot carry an expect: the mapping form "reset:" can.
        lines.append(f"  - {step}" if ":" in step else f"  - {step}:")
        lines.append(f"    expect: {expect}")
    return "\n".join(lines) + "\n"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "device"


def write_counterexample(
    trace: Sequence[Played], facts: DeviceFacts, out_dir: Path, why: str
) -> list[Path]:
    """Write ``<device>-<hash>.yaml`` and ``.c`` into ``out_dir``; their paths."""
    from vfio_hil._fuzz.creplay import c_program

    text = scenario_text(trace, facts, why)
    digest = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:10]
    stem = f"{_slug(facts.name)}-{digest}"
    out_dir.mkdir(parents=True, exist_ok=True)
    yaml_path = out_dir / f"{stem}.yaml"
    c_path = out_dir / f"{stem}.c"
    yaml_path.write_text(text, encoding="utf-8")
    c_path.write_text(c_program(trace, facts, yaml_path.name), encoding="utf-8")
    return [yaml_path, c_path]
