"""Write steps in the scenario format: the inverse of ``steps.parse_step``.

The named kinds written here are the ones ``steps`` reads, with the same
flags; anything no named kind says exactly is written as ``raw``.  A test
round-trips generated steps through both.
"""

from __future__ import annotations

from collections.abc import Sequence

from vfio_hil import _uapi as u
from vfio_hil._irq import IrqIndex, flags_name
from vfio_hil._lockstep.steps import (
    BarWrite,
    Clear,
    FdRef,
    GetIrqInfo,
    PendEventfd,
    Raise,
    Reopen,
    Reset,
    SetCommand,
    SetDisIntx,
    SetIrqs,
    Step,
    WriteEventfd,
)

__all__ = ["args", "index_name", "number", "step_yaml"]

_TRIGGER = u.VFIO_IRQ_SET_ACTION_TRIGGER
_MASK = u.VFIO_IRQ_SET_ACTION_MASK
_UNMASK = u.VFIO_IRQ_SET_ACTION_UNMASK
_NONE = u.VFIO_IRQ_SET_DATA_NONE
_BOOL = u.VFIO_IRQ_SET_DATA_BOOL
_EVENTFD = u.VFIO_IRQ_SET_DATA_EVENTFD


def index_name(index: int) -> str:
    return IrqIndex(index).name


def number(value: int) -> str:
    return f"{value:#x}" if value > 0xFFFF else str(value)


def _fds(fds: Sequence[FdRef]) -> str:
    return "[" + ", ".join(str(ref) for ref in fds) + "]"


def _bytes(data: bytes) -> str:
    return "[" + ", ".join(str(b) for b in data) + "]"


def _flags(flags: int) -> str:
    if not flags or flags & ~0x3F:
        return number(flags)
    return flags_name(flags, short=True)


def args(**fields: str) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in fields.items()) + "}"


def _named_request(step: SetIrqs) -> str | None:
    """The friendly step kind for ``step``, when one says exactly the same."""
    if step.argsz is not None or not 0 <= step.index < u.VFIO_PCI_NUM_IRQS:
        return None
    index, start, count = index_name(step.index), step.start, step.count
    fds, bools = step.fds, step.bools
    where = {"index": index} if start == 0 else {"index": index, "start": number(start)}
    if step.flags == _TRIGGER | _EVENTFD and fds is not None and len(fds) == count:
        return "enable: " + args(**where, fds=_fds(fds))
    if step.flags == _TRIGGER | _NONE and bools is None and fds is None:
        if start == 0 and count == 0:
            return "disable: " + args(index=index)
        return "trigger: " + args(index=index, start=number(start), count=number(count))
    if step.flags == _TRIGGER | _BOOL and bools is not None and len(bools) == count and count:
        return "trigger_bool: " + args(index=index, start=number(start), data=_bytes(bools))
    for action, kind in ((_MASK, "mask"), (_UNMASK, "unmask")):
        if step.flags == action | _NONE and bools is None and fds is None:
            return f"{kind}: " + args(index=index, start=number(start), count=number(count))
        if step.flags == action | _BOOL and bools is not None and len(bools) == count and count:
            return f"{kind}: " + args(index=index, start=number(start), data=_bytes(bools))
    if step.flags == _UNMASK | _EVENTFD and (start, count) == (0, 1) and fds and len(fds) == 1:
        return "unmask_eventfd: " + args(index=index, fd=str(fds[0]))
    return None


def _raw(step: SetIrqs) -> str:
    index = index_name(step.index) if 0 <= step.index < u.VFIO_PCI_NUM_IRQS else number(step.index)
    fields = {
        "flags": _flags(step.flags),
        "index": index,
        "start": number(step.start),
        "count": number(step.count),
    }
    if step.fds is not None:
        fields["fds"] = _fds(step.fds)
    elif step.bools is not None:
        fields["data"] = _bytes(step.bools)
    if step.argsz is not None:
        fields["argsz"] = number(step.argsz)
    return "raw: " + args(**fields)


def step_yaml(step: Step) -> str:
    """One step as a scenario step (without its expect)."""
    if isinstance(step, SetIrqs):
        return _named_request(step) or _raw(step)
    if isinstance(step, Raise):
        return f"raise: {number(step.value)}"
    if isinstance(step, Clear):
        return f"clear: {number(step.value)}"
    if isinstance(step, Reset):
        return "reset"
    if isinstance(step, Reopen):
        return "reopen"
    if isinstance(step, WriteEventfd):
        return f"write_eventfd: e{step.slot}"
    if isinstance(step, GetIrqInfo):
        known = 0 <= step.index < u.VFIO_PCI_NUM_IRQS
        return "irq_info: " + args(index=index_name(step.index) if known else number(step.index))
    if isinstance(step, PendEventfd):
        return f"pend_eventfd: e{step.slot}"
    if isinstance(step, SetCommand):
        return f"command: {step.value & 0xFFFF:#06x}"
    if isinstance(step, BarWrite):
        return "bar_write: " + args(offset=f"{step.offset:#x}", value=number(step.value))
    assert isinstance(step, SetDisIntx)
    return f"intx_disable: {'true' if step.disable else 'false'}"
