"""Each mutant is a behaviour a user can see: a short sequence, written from
the kernel's code, on which the reference and the mutant answer differently.

The fuzzer's job (tests/test_mutants.py) is to find such a sequence by
itself; these show one exists, so a mutant is never a no-op the bench could
"detect" by accident, and that the reference agrees with itself on it.
"""

from __future__ import annotations

import pytest

from vfio_hil._diff.cases import SLOTS
from vfio_hil._fuzz.mutants import MUTANTS, Mutant
from vfio_hil._lockstep import (
    GetIrqInfo,
    Lockstep,
    PendEventfd,
    Raise,
    Reopen,
    Reset,
    SetDisIntx,
    SetIrqs,
    Side,
    Step,
)

INTX, MSIX = 0, 2
_NONE, _BOOL, _FDS, _UNMASK_FD = 0x21, 0x22, 0x24, 0x14

WITNESSES: dict[str, list[Step]] = {
    "info-noresize-always": [GetIrqInfo(MSIX)],
    "info-msix-count-plus-one": [GetIrqInfo(MSIX)],
    # The line is asserted and masked; an unmask eventfd registered while it
    # holds a count unmasks at once, and the still-asserted line re-fires.
    "pending-unmask-ignored": [
        SetIrqs(_FDS, INTX, 0, 1, fds=("e0",)),
        Raise(1),
        PendEventfd(1),
        SetIrqs(_UNMASK_FD, INTX, 0, 1, fds=("e1",)),
    ],
    # count 0 disables whatever the start; the sweep then finds MSI-X off.
    "disable-needs-start-zero": [
        SetIrqs(_FDS, MSIX, 0, 2, fds=("e0", "e1")),
        SetIrqs(_NONE, MSIX, 1, 0),
        SetIrqs(_NONE, MSIX, 0, 2),
    ],
    "bool-only-one": [
        SetIrqs(_FDS, MSIX, 0, 1, fds=("e0",)),
        SetIrqs(_BOOL, MSIX, 0, 1, bools=b"\x80"),
    ],
    "reset-tears-down-interrupts": [
        SetIrqs(_FDS, MSIX, 0, 1, fds=("e0",)),
        Reset(),
        SetIrqs(_NONE, MSIX, 0, 1),
    ],
    "command-zero-at-open": [Reopen()],
    # DisINTx holds the asserted line back; clearing it delivers the interrupt.
    "disintx-clear-no-delivery": [
        SetIrqs(_FDS, INTX, 0, 1, fds=("e0",)),
        SetDisIntx(True),
        Raise(1),
        SetDisIntx(False),
    ],
}
_BY_NAME = {m.name: m for m in MUTANTS}


def _disagreements(mutant: Mutant, model_side: bool) -> list[int]:
    kernel = mutant.device()
    model = mutant.device(mutant.model) if model_side else mutant.device()
    run = Lockstep(Side(kernel, SLOTS), Side(model, SLOTS))
    try:
        return [n for n, step in enumerate(WITNESSES[mutant.name], 1) if run.play(step)]
    finally:
        run.close()


@pytest.mark.parametrize("name", sorted(WITNESSES))
def test_the_witness_separates_the_mutant_from_the_reference(name: str) -> None:
    mutant = _BY_NAME[name]
    assert _disagreements(mutant, model_side=False) == []
    assert _disagreements(mutant, model_side=True), f"{name}: the witness shows nothing"
