"""Kernel-vs-kernel: the same steps on two kernels, which must answer alike.

Here the two "kernels" are simulated devices answered by the model of two
kernel versions; in the lab they are two guests (``vfio-hil fuzz --lab A
--lab B``).  6.1 and 6.12 differ in dynamic MSI-X (63972f63a63f, v6.5:
GET_IRQ_INFO drops NORESIZE; vectors can be added past the enabled range).
"""

from __future__ import annotations

import pytest
from hypothesis import settings

from vfio_hil._lockstep import GetIrqInfo, Lockstep, Side, twin_of
from vfio_hil._targets import parse_target
from vfio_hil.stateful import Divergence, make_machine

QUICK = settings(max_examples=150, stateful_step_count=20, database=None, deadline=None)


def _machine(first: str, *others: str) -> type:
    machine = make_machine(parse_target(first).open, seed=0, export=False)
    machine.context.peers = [parse_target(spec).open for spec in others]
    return machine


def test_6_1_and_6_12_are_told_apart_and_named() -> None:
    machine = _machine("sim:virtio_msix:8@6.12", "sim:virtio_msix:8@6.1")
    try:
        with pytest.raises(Divergence) as caught:
            machine.run(QUICK)
    finally:
        machine.close_device()
    text = str(caught.value)
    # Each kernel agrees with its own model: the difference is between them.
    assert "sim:virtio_msix:8 [6.12] answered" in text
    assert "sim:virtio_msix:8 [6.1] answered" in text
    assert "its model" not in text


def test_the_same_kernel_twice_never_differs() -> None:
    machine = _machine("sim:edu@6.12", "sim:edu@6.12")
    try:
        machine.run(QUICK)
        assert machine.stats().steps > 1000
    finally:
        machine.close_device()


def test_a_peer_that_disagrees_with_its_own_model_is_named() -> None:
    from vfio_hil._fuzz.mutants import MUTANTS

    mutant = next(m for m in MUTANTS if m.name == "info-msix-count-plus-one")
    first = parse_target("sim:virtio_msix:8@6.12").open()
    peer = parse_target("sim:virtio_msix:8@6.12").open()
    run = Lockstep(
        Side(first, 2),
        Side(twin_of(first), 2),
        peers=[Lockstep(Side(peer, 2), Side(twin_of(peer, model=mutant.model), 2))],
    )
    try:
        _, disagreement = run.step(GetIrqInfo(2))
    finally:
        run.close()
    assert disagreement is not None
    label = f"{peer.name} [6.12]"
    assert (disagreement.left, disagreement.right) == (label, "its model")
    assert f"{label} answered flags=0x1 count=8, its model answered flags=0x1 count=9" in str(
        disagreement
    )
