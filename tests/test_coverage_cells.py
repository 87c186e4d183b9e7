"""Cells as vfio-pci defines them: each expected cell comes from the kernel's
rules (docs spec, drivers/vfio/pci/vfio_pci_intrs.c, vfio_main.c), not from
the classifier."""

from __future__ import annotations

import contextlib
import random

import pytest

from vfio_hil import EventFd, IrqIndex, IrqSet, SimDevice
from vfio_hil._coverage.cells import Cell, range_of
from vfio_hil._coverage.recorder import Recorder, paused, recording
from vfio_hil._diff.cases import random_sequence
from vfio_hil._diff.check import run_differential
from vfio_hil._errors import VfioError
from vfio_hil._lockstep.steps import GetIrqInfo, SetIrqs
from vfio_hil._lockstep.twin import irq_counts

_U32_MAX = 0xFFFFFFFF


@pytest.mark.parametrize(
    ("start", "count", "num_irqs", "expected"),
    [
        (0, 1, 1, "end"),  # INTx's one vector
        (0, 0, 1, "zero"),
        (1, 0, 1, "past"),  # V2: start >= num_irqs, even with count 0
        (0, 2, 1, "past"),  # V2: start + count > num_irqs
        (0, 1, 64, "in"),
        (63, 1, 64, "end"),
        (0, 1, 0, "past"),  # an index the device lacks: nothing is in range
        (1, _U32_MAX - 1, 64, "overflow"),  # V1: count >= U32_MAX - start
        (0, _U32_MAX, 1, "overflow"),
        (_U32_MAX, 0, 1, "overflow"),
    ],
)
def test_range_classes_follow_validate_and_prepare(
    start: int, count: int, num_irqs: int, expected: str
) -> None:
    assert range_of(start, count, num_irqs) == expected


def _cells(rec: Recorder) -> list[str]:
    return [str(cell) for counts in rec.counts.values() for cell in counts]


def _send(dev: SimDevice, request: IrqSet) -> None:
    with contextlib.suppress(VfioError):  # the errno is the cell's outcome
        dev.set_irqs(request)


def test_intx_enable_mask_and_a_pending_unmask_eventfd() -> None:
    with (
        SimDevice.edu(kernel="6.12") as dev,
        EventFd() as trigger,
        EventFd(initval=1) as unmask,
        recording() as rec,
    ):
        _send(dev, IrqSet.eventfds(IrqIndex.INTX, 0, [trigger]))
        _send(dev, IrqSet.mask(IrqIndex.INTX, 0, 1))
        _send(dev, IrqSet.unmask_eventfd(IrqIndex.INTX, unmask))
        _send(
            dev, IrqSet.unmask_eventfd(IrqIndex.INTX, unmask)
        )  # vfio_virqfd_enable(): one virqfd, EBUSY
    assert _cells(rec) == [
        "INTX TRIGGER EVENTFD end off ok",  # vfio_intx_enable()
        "INTX MASK NONE end on ok",  # __vfio_pci_intx_mask()
        # registered while it holds a count: the virqfd unmasks at once
        "INTX UNMASK EVENTFD end masked+pending ok",
        # vfio_virqfd_enable()'s initial poll runs the handler but reads no
        # count (only virqfd_wakeup() does): still pending, and one virqfd only
        "INTX UNMASK EVENTFD end on+pending EBUSY",
    ]


def test_refusals_before_any_state_and_handlers_that_do_not_exist() -> None:
    with SimDevice.edu(kernel="6.12") as dev, recording() as rec:
        _send(dev, IrqSet.mask(IrqIndex.MSI, 0, 1))  # MSI masking is not exported
        _send(dev, IrqSet.raw(0x21, 5, 0, 1))  # V1: index >= VFIO_PCI_NUM_IRQS
        _send(dev, IrqSet.raw(0x21, 0, 0, 2))  # V2: past INTx's one vector
        _send(dev, IrqSet.raw(0x23, 0, 0, 1))  # V3: two data types
        _send(dev, IrqSet.raw(0x19, 0, 0, 1))  # two actions: no handler
        for index in (0, 5):
            with contextlib.suppress(VfioError):
                dev.irq_info(index)
    assert _cells(rec) == [
        "MSI MASK NONE * - ENOTTY",  # no handler, whatever the range or state
        "BAD * NONE past - EINVAL",  # validation reads no action and no state
        "INTX * NONE past - EINVAL",
        "INTX * BAD end - EINVAL",
        "INTX BAD NONE * - ENOTTY",
        "INTX INFO - - - ok",
        "BAD INFO - - - EINVAL",
    ]


def test_the_line_is_part_of_intx_state() -> None:
    with SimDevice.edu(kernel="6.12") as dev, EventFd() as trigger, recording() as rec:
        dev.set_irqs(IrqSet.eventfds(IrqIndex.INTX, 0, [trigger]))
        assert dev.stimulus is not None
        dev.stimulus.raise_irq()  # vfio_intx_handler() masks and signals
        dev.quiesce()
        dev.set_irqs(IrqSet.unmask(IrqIndex.INTX, 0, 1))  # still asserted: re-fires
    assert _cells(rec)[-1] == "INTX UNMASK NONE end masked+line ok"


def test_a_lockstep_run_counts_each_step_once_and_not_its_cleaning() -> None:
    def edu() -> SimDevice:
        return SimDevice.edu(kernel="6.12")

    with edu() as probe:
        counts = irq_counts(probe)
    steps = list(random_sequence(random.Random(7), counts, True, 30))
    calls = sum(isinstance(s, SetIrqs | GetIrqInfo) for s in steps)
    with recording() as rec:
        report = run_differential(edu, matrix=False, seeds=range(7, 8), length=30)
    assert not report.disagreements
    assert not report.oopses
    assert sum(sum(c.values()) for c in rec.counts.values()) == calls
    assert [str(key) for key in rec.counts] == ["sim:edu@6.12"]


def test_paused_records_nothing() -> None:
    with SimDevice.edu() as dev, recording() as rec, paused():
        _send(dev, IrqSet.mask(IrqIndex.INTX, 0, 1))
    assert rec.counts == {}


def test_cell_parse_is_str_inverse_and_refuses_other_text() -> None:
    cell = Cell("INTX", "UNMASK", "EVENTFD", "end", "masked+pending", "ok")
    assert Cell.parse(str(cell)) == cell
    with pytest.raises(ValueError, match="six words"):
        Cell.parse("INTX UNMASK")
