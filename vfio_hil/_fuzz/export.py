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

from vfio_hil import _uapi as u
from vfio_hil._diff.cases import SLOTS
from vfio_hil._fuzz.facts import DeviceFacts
from vfio_hil._irq import IrqIndex
from vfio_hil._lockstep import Observation, Played
from vfio_hil._lockstep.steps import (
    Clear,
    FdRef,
    Raise,
    Reopen,
    Reset,
    SetDisIntx,
    SetIrqs,
    Step,
    WriteEventfd,
)
from vfio_hil._scenario.discover import MARKER_LINE
from vfio_hil._scenario.steps import FLAG_NAMES

__all__ = ["scenario_text", "step_yaml", "write_counterexample"]

_TRIGGER = u.VFIO_IRQ_SET_ACTION_TRIGGER
_MASK = u.VFIO_IRQ_SET_ACTION_MASK
_UNMASK = u.VFIO_IRQ_SET_ACTION_UNMASK
_NONE = u.VFIO_IRQ_SET_DATA_NONE
_BOOL = u.VFIO_IRQ_SET_DATA_BOOL
_EVENTFD = u.VFIO_IRQ_SET_DATA_EVENTFD


def _index(index: int) -> str:
    return IrqIndex(index).name


def _num(value: int) -> str:
    return f"{value:#x}" if value > 0xFFFF else str(value)


def _fds(fds: Sequence[FdRef]) -> str:
    return "[" + ", ".join(str(ref) for ref in fds) + "]"


def _bytes(data: bytes) -> str:
    return "[" + ", ".join(str(b) for b in data) + "]"


def _flags(flags: int) -> str:
    if not flags or flags & ~0x3F:
        return _num(flags)
    return "|".join(name for name, bit in FLAG_NAMES.items() if flags & bit)


def _args(**fields: str) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in fields.items()) + "}"


def _named_request(step: SetIrqs) -> str | None:
    """The friendly step kind for ``step``, when one says exactly the same."""
    if step.argsz is not None or not 0 <= step.index < u.VFIO_PCI_NUM_IRQS:
        return None
    index, start, count = _index(step.index), step.start, step.count
    fds, bools = step.fds, step.bools
    where = {"index": index} if start == 0 else {"index": index, "start": _num(start)}
    if step.flags == _TRIGGER | _EVENTFD and fds is not None and len(fds) == count:
        return "enable: " + _args(**where, fds=_fds(fds))
    if step.flags == _TRIGGER | _NONE and bools is None and fds is None:
        if start == 0 and count == 0:
            return "disable: " + _args(index=index)
        return "trigger: " + _args(index=index, start=_num(start), count=_num(count))
    if step.flags == _TRIGGER | _BOOL and bools is not None and len(bools) == count and count:
        return "trigger_bool: " + _args(index=index, start=_num(start), data=_bytes(bools))
    for action, kind in ((_MASK, "mask"), (_UNMASK, "unmask")):
        if step.flags == action | _NONE and bools is None and fds is None:
            return f"{kind}: " + _args(index=index, start=_num(start), count=_num(count))
        if step.flags == action | _BOOL and bools is not None and len(bools) == count and count:
            return f"{kind}: " + _args(index=index, start=_num(start), data=_bytes(bools))
    if step.flags == _UNMASK | _EVENTFD and (start, count) == (0, 1) and fds and len(fds) == 1:
        return "unmask_eventfd: " + _args(index=index, fd=str(fds[0]))
    return None


def _raw(step: SetIrqs) -> str:
    index = _index(step.index) if 0 <= step.index < u.VFIO_PCI_NUM_IRQS else _num(step.index)
    fields = {
        "flags": _flags(step.flags),
        "index": index,
        "start": _num(step.start),
        "count": _num(step.count),
    }
    if step.fds is not None:
        fields["fds"] = _fds(step.fds)
    elif step.bools is not None:
        fields["data"] = _bytes(step.bools)
    if step.argsz is not None:
        fields["argsz"] = _num(step.argsz)
    return "raw: " + _args(**fields)


def step_yaml(step: Step) -> str:
    """One step as a scenario step (without its expect)."""
    if isinstance(step, SetIrqs):
        return _named_request(step) or _raw(step)
    if isinstance(step, Raise):
        return f"raise: {_num(step.value)}"
    if isinstance(step, Clear):
        return f"clear: {_num(step.value)}"
    if isinstance(step, Reset):
        return "reset"
    if isinstance(step, Reopen):
        return "reopen"
    if isinstance(step, WriteEventfd):
        return f"write_eventfd: e{step.slot}"
    assert isinstance(step, SetDisIntx)
    return f"intx_disable: {'true' if step.disable else 'false'}"


def _expect(seen: Observation) -> str | None:
    signals = {f"e{k}": n for k, n in enumerate(seen.counters) if n}
    fields: dict[str, str] = {}
    if isinstance(seen.result, str):
        fields["errno"] = seen.result
    elif seen.result or not signals:
        fields["return"] = str(seen.result)
    if signals:
        fields["signals"] = _args(**{k: str(n) for k, n in signals.items()})
    if fields == {"return": "0"}:
        return None
    return _args(**fields)


def _requires(facts: DeviceFacts, steps: Sequence[Step]) -> str:
    counts = facts.counts
    fields: dict[str, str] = {}
    single = [_index(i) for i in (IrqIndex.INTX, IrqIndex.ERR, IrqIndex.REQ) if counts.get(i)]
    if single:
        fields["irq"] = "[" + ", ".join(single) + "]"
    for key, index in (("msi", IrqIndex.MSI), ("msix", IrqIndex.MSIX)):
        if counts.get(index):
            fields[key] = str(counts[index])
    if any(isinstance(s, Raise | Clear) for s in steps):
        fields["stimulus"] = "true"
    fields["pcie"] = "true" if facts.pcie else "false"
    if counts.get(IrqIndex.MSIX):
        fields["dyn_msix"] = "true" if facts.dyn_msix else "false"
    if any(isinstance(s, Reset) for s in steps):
        fields["reset"] = "true" if facts.can_reset else "false"
    # Expectations past an index's end hold for exactly these counts.
    fields["counts"] = _args(**{_index(i): str(n) for i, n in sorted(counts.items())})
    fields["kernel"] = '"==' + ".".join(map(str, facts.kernel.version)) + '"'
    return _args(**fields)


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
    counts = ", ".join(f"{_index(i)}={n}" for i, n in sorted(facts.counts.items()))
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
