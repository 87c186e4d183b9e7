"""Request sequences for the differential check.

``matrix_cases`` walks the spec's matrix (section 8): every index the device
has, in each state (N: nothing enabled, E: this index enabled, O: another
kind enabled), probed with every action x data type x count, plus the
invalid requests of each validation class.  ``random_sequence`` draws a
seeded mix of valid and invalid requests, device-raised interrupts, resets
and reopens.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping

from vfio_hil._hw import EDU_IRQ_ACK, EDU_IRQ_RAISE
from vfio_hil._irq import IrqIndex
from vfio_hil._lockstep.steps import (
    BarWrite,
    Clear,
    FdRef,
    Raise,
    Reopen,
    Reset,
    SetCommand,
    SetDisIntx,
    SetIrqs,
    Step,
    WriteEventfd,
)

__all__ = ["SLOTS", "Case", "cleanup_steps", "config_cases", "matrix_cases", "random_sequence"]

SLOTS = 8
# PCI_COMMAND values a driver writes: as at open, +bus master, memory off,
# +INTx-disable, everything.
_COMMANDS = (0x0103, 0x0107, 0x0104, 0x0507, 0x0000, 0xFFFF)
NONE, BOOL, EVENTFD = 1, 2, 4
MASK, UNMASK, TRIGGER = 8, 16, 32
_DATA = {"NONE": NONE, "BOOL": BOOL, "EVENTFD": EVENTFD}
_ACTIONS = {"MASK": MASK, "UNMASK": UNMASK, "TRIGGER": TRIGGER}

Case = tuple[str, list[Step]]
Counts = Mapping[int, int]  # index -> GET_IRQ_INFO count (absent: EINVAL)


def cleanup_steps(counts: Counts) -> list[Step]:
    """Bring a device back to nothing-enabled without closing it."""
    steps: list[Step] = [SetDisIntx(False)]
    steps += [SetIrqs(TRIGGER | NONE, int(i), 0, 0) for i in IrqIndex if counts.get(i)]
    return steps


def _slots(start: int, n: int) -> tuple[FdRef, ...]:
    return tuple(f"e{(start + k) % SLOTS}" for k in range(n))


def _enable(index: int, counts: Counts) -> list[Step]:
    n = min(counts.get(index, 0), 4)
    if index in (IrqIndex.INTX, IrqIndex.ERR, IrqIndex.REQ):
        n = 1
    return [SetIrqs(TRIGGER | EVENTFD, index, 0, n, fds=_slots(0, n))] if n else []


def _other_kind(index: int, counts: Counts) -> int | None:
    kinds = (IrqIndex.INTX, IrqIndex.MSI, IrqIndex.MSIX)
    if index not in kinds:
        return None
    return next((k for k in kinds if k != index and counts.get(k)), None)


def _payload(data: int, start: int, count: int) -> dict[str, object]:
    if data == EVENTFD:
        return {"fds": _slots(4, count)}
    if data == BOOL:
        return {"bools": bytes((k + 1) % 2 for k in range(count))}
    return {}


def _probes(index: int, n: int) -> Iterator[tuple[str, SetIrqs]]:
    starts = sorted({0, 1, n - 1} & set(range(n)))
    for aname, action in _ACTIONS.items():
        for dname, data in _DATA.items():
            for start in starts:
                for count in sorted({0, 1, 2, n - start} - {c for c in (2,) if start + 2 > n}):
                    if start + count > n:
                        continue
                    kw = _payload(data, start, count)
                    probe = SetIrqs(action | data, index, start, count, **kw)  # type: ignore[arg-type]
                    yield f"{aname}|{dname} start={start} count={count}", probe
    # EVENTFD specials on a single sub-index: de-assign, bad numbers.
    for ref in (-1, -2, "closed", "notfd"):
        yield f"TRIGGER|EVENTFD fd={ref}", SetIrqs(TRIGGER | EVENTFD, index, 0, 1, fds=(ref,))
        if index == IrqIndex.INTX:
            yield f"UNMASK|EVENTFD fd={ref}", SetIrqs(UNMASK | EVENTFD, index, 0, 1, fds=(ref,))


def _invalid(index: int, n: int) -> Iterator[tuple[str, SetIrqs]]:
    yield "flags outside 0x3f", SetIrqs(0x40 | TRIGGER | NONE, index, 0, 1)
    yield "no data type", SetIrqs(TRIGGER, index, 0, 1)
    yield "NONE|BOOL", SetIrqs(TRIGGER | NONE | BOOL, index, 0, 1, bools=b"\x01")
    yield "no action", SetIrqs(NONE, index, 0, 1)
    yield "MASK|TRIGGER", SetIrqs(MASK | TRIGGER | NONE, index, 0, 1)
    yield "start == count", SetIrqs(TRIGGER | NONE, index, n, 0)
    yield "start + count > count", SetIrqs(TRIGGER | NONE, index, n - 1 if n else 0, 2)
    yield "start near 2**32", SetIrqs(TRIGGER | NONE, index, 0xFFFFFFFF, 2)
    yield "start + count == 2**32 - 1", SetIrqs(TRIGGER | NONE, index, 1, 0xFFFFFFFE)
    yield "argsz below the header", SetIrqs(TRIGGER | NONE, index, 0, 1, argsz=16)
    yield (
        "argsz short of the payload",
        SetIrqs(TRIGGER | EVENTFD, index, 0, 1, fds=("e0",), argsz=23),
    )


def config_cases(counts: Counts, stimulus: bool) -> list[Case]:
    """PCI_COMMAND as a driver writes it, and raw BAR writes (edu's registers),
    each read back: what every open shows, what a write keeps, what a reset
    and a close leave behind, and a device interrupt with bus mastering off."""
    cases: list[Case] = [
        (f"PCI_COMMAND {value:#06x}, reset, reopen", [SetCommand(value), Reset(), Reopen()])
        for value in _COMMANDS
    ]
    if not stimulus:
        return cases
    for index in (IrqIndex.INTX, IrqIndex.MSI):
        enable = _enable(index, counts)
        if not enable:
            continue
        for command in (0x0103, 0x0107, 0x0503, 0x0000):
            cases.append(
                (
                    f"{index.name} raised by a BAR write with PCI_COMMAND {command:#06x}",
                    [
                        *enable,
                        SetCommand(command),
                        BarWrite(EDU_IRQ_RAISE, 1),
                        BarWrite(EDU_IRQ_ACK, 1),
                        SetCommand(0x0107),
                        SetIrqs(TRIGGER | NONE, index, 0, 1),
                    ],
                )
            )
    return cases


def matrix_cases(counts: Counts) -> list[Case]:
    """One case per (index, state, probe); each starts from a clean device."""
    cases: list[Case] = []
    for index in IrqIndex:
        n = counts.get(index)
        if n is None:
            cases.append(
                (
                    f"{index.name} absent: enable",
                    [SetIrqs(TRIGGER | EVENTFD, index, 0, 1, fds=("e0",))],
                )
            )
            continue
        states: dict[str, list[Step]] = {"N": [], "E": _enable(index, counts)}
        other = _other_kind(index, counts)
        if other is not None:
            states["O"] = _enable(other, counts)
        for state, prefix in states.items():
            if state == "E" and not prefix:
                continue
            probes = list(_probes(index, n)) if n else []
            for label, probe in [*probes, *_invalid(index, n)]:
                loop = [SetIrqs(TRIGGER | NONE, index, 0, n)] if state == "E" and n else []
                cases.append((f"{index.name} {state}: {label}", [*prefix, probe, *loop]))
    cases.append(("index 5", [SetIrqs(TRIGGER | NONE, 5, 0, 0)]))
    return cases


def random_sequence(
    rng: random.Random, counts: Counts, stimulus: bool, length: int
) -> Iterator[Step]:
    """A seeded sequence, biased toward valid requests on the device's indexes.

    Drawn step by step as it is played, so a long ``length`` costs no memory;
    the draws (and so the steps of a seed) are the same as when it was a list.
    """
    present = [int(i) for i in IrqIndex if counts.get(i)]
    for _ in range(length):
        roll = rng.random()
        if stimulus and roll < 0.15:
            yield Raise(rng.choice([1, 2, 0x80000000]))
        elif stimulus and roll < 0.22:
            yield Clear(rng.choice([1, 2, 0xFFFFFFFF]))
        elif roll < 0.24:
            yield Reset()
        elif roll < 0.26:
            yield Reopen()
        elif roll < 0.30:
            yield SetDisIntx(rng.random() < 0.5)
        elif roll < 0.33:
            yield WriteEventfd(rng.randrange(SLOTS))
        else:
            yield _random_request(rng, present, counts)


def _random_request(rng: random.Random, present: list[int], counts: Counts) -> SetIrqs:
    index = rng.choice(present) if present and rng.random() < 0.95 else rng.randrange(6)
    n = counts.get(index, 0)
    action = rng.choice([TRIGGER, TRIGGER, TRIGGER, MASK, UNMASK])
    data = rng.choice([NONE, BOOL, EVENTFD])
    if rng.random() < 0.05:
        action |= rng.choice([MASK, UNMASK, 0x40])
    start = rng.randrange(n) if n and rng.random() < 0.9 else rng.choice([0, n, 0xFFFFFFFF])
    room = max(n - start, 0)
    count = rng.randint(0, min(room, 6)) if rng.random() < 0.9 else rng.choice([0, room + 1])
    if data == EVENTFD:
        pool: list[FdRef] = [*(f"e{k}" for k in range(SLOTS)), -1, -1, "closed", "notfd", -2]
        weights = [4] * SLOTS + [3, 3, 1, 1, 1]
        fds = tuple(rng.choices(pool, weights, k=min(count, 64)))
        return SetIrqs(action | data, index, start, count, fds=fds)
    if data == BOOL:
        bools = bytes(rng.choice([0, 1]) for _ in range(min(count, 64)))
        return SetIrqs(action | data, index, start, count, bools=bools)
    if action & TRIGGER and rng.random() < 0.3:
        count = 0  # disable
    return SetIrqs(action | data, index, start, count)
