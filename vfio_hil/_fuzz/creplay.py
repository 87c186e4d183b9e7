"""A counterexample as a standalone C program for a real device.

    gcc -Wall -Werror -o replay FILE.c && sudo ./replay 0000:00:03.0

It opens the device through its group and the container (type1v2, type1 or
no-IOMMU), creates one eventfd per slot, plays each step with the same
ioctls and region accesses vfio-hil uses, and prints each step's return
value or errno and every eventfd counter next to what the kernel side did
when the run was recorded.  Exit status: 0 every step matched, 1 some step
differed, 2 the device could not be opened.
"""

from __future__ import annotations

import errno as _errno
from collections.abc import Sequence

from vfio_hil._diff.cases import SLOTS
from vfio_hil._fuzz.ctemplate import MAIN_END, PRELUDE
from vfio_hil._fuzz.facts import DeviceFacts
from vfio_hil._hw import EDU_IRQ_ACK, EDU_IRQ_RAISE
from vfio_hil._lockstep import Played, late_steps
from vfio_hil._lockstep.steps import (
    BarWrite,
    Clear,
    FdRef,
    FdResolver,
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
from vfio_hil._lockstep.timing import POLL_S, REPLAY

__all__ = ["c_program"]

_INT_MIN = -(2**31)


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _fd(ref: FdRef) -> str:
    if isinstance(ref, int):
        return "(-2147483647 - 1)" if ref == _INT_MIN else str(ref)
    if ref == "closed":
        return "closed_fd"
    if ref == "notfd":
        return "not_eventfd"
    return f"efd[{int(ref[1:])}]"


def _set_irqs(step: SetIrqs) -> list[str]:
    irqset = step.realize(FdResolver([0] * SLOTS, 0, 0))
    total = len(irqset.pack()) - 20  # payload plus the zero padding IrqSet adds
    argsz = irqset.argsz if irqset.argsz is not None else 20 + len(irqset.data)
    header = f"{argsz & 0xFFFFFFFF}u, {step.flags & 0xFFFFFFFF:#x}u, {step.index & 0xFFFFFFFF}u"
    header += f", {step.start & 0xFFFFFFFF}u, {step.count & 0xFFFFFFFF}u"
    if step.fds:
        items = ", ".join(_fd(ref) for ref in step.fds)
        return [
            f"\t\tint32_t fds[] = {{ {items} }};",
            f"\t\tret = set_irqs({header}, fds, sizeof(fds), {total});",
        ]
    if step.bools:
        items = ", ".join(str(b) for b in step.bools)
        return [
            f"\t\tuint8_t bools[] = {{ {items} }};",
            f"\t\tret = set_irqs({header}, bools, sizeof(bools), {total});",
        ]
    return [f"\t\tret = set_irqs({header}, NULL, 0, {total});"]


def _call(step: Step) -> list[str]:
    if isinstance(step, SetIrqs):
        return _set_irqs(step)
    if isinstance(step, Raise | Clear):
        register = EDU_IRQ_RAISE if isinstance(step, Raise) else EDU_IRQ_ACK
        return [f"\t\tret = edu_write({register:#x}, {step.value & 0xFFFFFFFF:#x}u);"]
    if isinstance(step, Reset):
        return ["\t\tret = reset_device();"]
    if isinstance(step, Reopen):
        return ["\t\tret = reopen_device();"]
    if isinstance(step, WriteEventfd):
        return [f"\t\tret = write_eventfd({step.slot});"]
    if isinstance(step, PendEventfd):
        return ["\t\tret = 0; /* the write comes after the counters are read */"]
    if isinstance(step, GetIrqInfo):
        return [
            "\t\tuint32_t flags, count;",
            f"\t\tret = irq_info({step.index & 0xFFFFFFFF}u, &flags, &count);",
        ]
    if isinstance(step, SetCommand):
        return [f"\t\tret = set_command({step.value & 0xFFFF:#x});"]
    if isinstance(step, BarWrite):
        offset, value = step.offset & 0xFFFFFFFF, step.value & 0xFFFFFFFF
        return [f"\t\tret = bar_write({offset:#x}u, {value:#x}u);"]
    assert isinstance(step, SetDisIntx)
    return [f"\t\tret = set_intx_disable({int(step.disable)});"]


def _after_read(step: Step) -> list[str]:
    """A PendEventfd writes once its counters are read: the next step finds the count."""
    return [f"\t\twrite_eventfd({step.slot});"] if isinstance(step, PendEventfd) else []


def _check_command(number: int, played: Played) -> list[str]:
    """A step that can change PCI_COMMAND also compares what it reads afterwards."""
    command = played.kernel.command
    return [] if command is None else [f"\t\tbad |= check_command({number}, {command:#06x});"]


def _check_info(number: int, played: Played) -> list[str]:
    """A GET_IRQ_INFO step also compares the flags and count the kernel side answered."""
    if not isinstance(played.step, GetIrqInfo) or played.kernel.info is None:
        return []  # a failed call: check() compares its errno
    flags, count = played.kernel.info
    return [
        f"\t\tbad |= check_info({number}, ret, flags, count, {flags:#x}u, {count}u);",
    ]


def _expected_ret(result: int | str) -> tuple[int, str]:
    if isinstance(result, int):
        return result, str(result)
    code = getattr(_errno, result, None)
    return (-code if code else -9999), result


def c_program(trace: Sequence[Played], facts: DeviceFacts, scenario: str) -> str:
    """The C source replaying ``trace``; ``scenario`` names the matching YAML file."""
    late = late_steps([p.step for p in trace])
    lines = [
        PRELUDE.replace("@SLOTS@", str(SLOTS))
        .replace("@SETTLE_US@", str(round(REPLAY.settle_s * 1e6)))
        .replace("@CONVERGE_US@", str(round(REPLAY.converge_s * 1e6)))
        .replace("@POLL_US@", str(round(POLL_S * 1e6)))
        .replace("@RECHECK@", str(int(REPLAY.recheck)))
        .replace("@SCENARIO@", scenario)
        .replace("@DEVICE@", f"{facts.name}, kernel {facts.kernel.name}")
    ]
    if any(isinstance(p.step, Raise | Clear | BarWrite) for p in trace):
        lines.append(f"\tedu_clear({EDU_IRQ_ACK:#x}); /* clear edu's interrupt status */")
    for number, (played, is_late) in enumerate(zip(trace, late, strict=True), 1):
        want, want_name = _expected_ret(played.kernel.result)
        counters = ", ".join(str(n) for n in played.kernel.counters)
        lines += [
            f"\t/* step {number}: {repr(played.step).replace('*/', '* /')} */",
            "\t{",
            *_call(played.step),
            f"\t\tstatic const uint64_t want[SLOTS] = {{ {counters} }};",
            f"\t\tbad |= check({number}, {_c_string(repr(played.step))}, ret, {want}, "
            f"{_c_string(want_name)}, want, {int(is_late)});",
            *_check_info(number, played),
            *_check_command(number, played),
            *_after_read(played.step),
            "\t}",
        ]
    lines.append(MAIN_END)
    return "\n".join(lines)
