"""Cells of the SET_IRQS state space, classified from the reference model.

A cell is one request as vfio-pci sees it: the IRQ index, the action, the
data type, where the range lies against the index's count, the index's state
just before the call, and the outcome.  ``GET_IRQ_INFO`` calls are cells too
(action ``INFO``, the other dimensions ``-``).
"""

from __future__ import annotations

import errno
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vfio_hil import _uapi as u
from vfio_hil._model.validate import set_irqs_validate_and_prepare

if TYPE_CHECKING:
    from vfio_hil._model import VfioPciModel

__all__ = [
    "ACTIONS",
    "DATA_TYPES",
    "INDEXES",
    "RANGES",
    "STATES",
    "Cell",
    "action_of",
    "data_type_of",
    "index_name",
    "outcome_of",
    "range_of",
    "state_of",
]

_U32_MAX = 0xFFFFFFFF
_NUM_IRQS = u.VFIO_PCI_NUM_IRQS
_HEADER = struct.Struct("<5I")

INDEXES = ("INTX", "MSI", "MSIX", "ERR", "REQ", "BAD")  # BAD: index >= VFIO_PCI_NUM_IRQS
# BAD: no action bit, several, or stray bits; *: any (a request the validation refused)
ACTIONS = ("MASK", "UNMASK", "TRIGGER", "BAD", "*")
DATA_TYPES = ("NONE", "BOOL", "EVENTFD", "BAD")  # BAD: no data bit or several
# in: ends before the last vector; end: ends at it; past: starts or ends past
# it (V2); overflow: start + count reaches u32's end (V1); zero: count 0 in range.
# *: any (a request no handler takes: ENOTTY whatever the range)
RANGES = ("in", "end", "past", "overflow", "zero", "*")
# off: nothing enabled (ERR/REQ: no trigger); on: this index enabled (ERR/REQ:
# a trigger set); masked: INTx enabled and masked; other: another of
# INTx/MSI/MSI-X enabled; "-": vfio_set_irqs_validate_and_prepare() refused
# the request, or vfio_pci_set_irqs_ioctl() has no handler for its index and
# action (ENOTTY): both before any state is read.  "+line": the device
# drives its INTx line (INTx only); "+pending": the request's first eventfd
# holds a count (EVENTFD only).
BASE_STATES = ("off", "on", "masked", "other", "-")
STATES = (
    *(
        f"{base}{line}{pending}"
        for base in BASE_STATES[:-1]
        for line in ("", "+line")
        for pending in ("", "+pending")
    ),
    "-",
)

_ACTIONS = {
    u.VFIO_IRQ_SET_ACTION_MASK: "MASK",
    u.VFIO_IRQ_SET_ACTION_UNMASK: "UNMASK",
    u.VFIO_IRQ_SET_ACTION_TRIGGER: "TRIGGER",
}
_DATA = {
    u.VFIO_IRQ_SET_DATA_NONE: "NONE",
    u.VFIO_IRQ_SET_DATA_BOOL: "BOOL",
    u.VFIO_IRQ_SET_DATA_EVENTFD: "EVENTFD",
}
_LEGAL = u.VFIO_IRQ_SET_DATA_TYPE_MASK | u.VFIO_IRQ_SET_ACTION_TYPE_MASK


@dataclass(frozen=True, order=True)
class Cell:
    index: str
    action: str
    data: str
    range: str
    state: str
    outcome: str

    def __str__(self) -> str:
        return " ".join((self.index, self.action, self.data, self.range, self.state, self.outcome))

    @classmethod
    def parse(cls, line: str) -> Cell:
        """The inverse of ``str``; a clear error for anything else."""
        parts = line.split()
        if len(parts) != 6:
            raise ValueError(
                f"{line!r}: a cell is six words: index action data range state outcome"
            )
        return cls(*parts)

    @property
    def row(self) -> str:
        """The heat map's row: index, action, data type."""
        return f"{self.index} {self.action} {self.data}"

    @property
    def column(self) -> str:
        """The heat map's column: range class and state."""
        return f"{self.range} {self.state}"


def info_cell(index: int, outcome: str) -> Cell:
    return Cell(index_name(index), "INFO", "-", "-", "-", outcome)


def index_name(index: int) -> str:
    return INDEXES[index] if 0 <= index < u.VFIO_PCI_NUM_IRQS else "BAD"


def action_of(flags: int) -> str:
    if flags & ~_LEGAL:
        return "BAD"
    return _ACTIONS.get(flags & u.VFIO_IRQ_SET_ACTION_TYPE_MASK, "BAD")


def data_type_of(flags: int) -> str:
    return _DATA.get(flags & u.VFIO_IRQ_SET_DATA_TYPE_MASK, "BAD")


def range_of(start: int, count: int, num_irqs: int) -> str:
    """The range against ``num_irqs`` in the order vfio_set_irqs_validate_and_prepare() tests it."""
    if count >= _U32_MAX - start:
        return "overflow"
    if start >= num_irqs or start + count > num_irqs:
        return "past"
    if count == 0:
        return "zero"
    return "end" if start + count == num_irqs else "in"


def outcome_of(ret: int) -> str:
    """``ok`` (0), ``>0`` (vfio_msi_enable()'s "vectors we could have had"), or the errno."""
    if ret == 0:
        return "ok"
    if ret > 0:
        return ">0"
    return errno.errorcode.get(-ret, str(-ret))


def state_of(model: VfioPciModel, index: int, flags: int, data: bytes) -> str:
    """The index's state before a request, from the model's ``IrqState``."""
    state = model.state
    if index == u.VFIO_PCI_INTX_IRQ_INDEX:
        if state.irq_type == u.VFIO_PCI_NUM_IRQS:
            base = "off"
        elif state.irq_type == index:
            base = "masked" if state.intx is not None and state.intx.masked else "on"
        else:
            base = "other"
    elif index in (u.VFIO_PCI_MSI_IRQ_INDEX, u.VFIO_PCI_MSIX_IRQ_INDEX):
        if state.irq_type == u.VFIO_PCI_NUM_IRQS:
            base = "off"
        else:
            base = "on" if state.irq_type == index else "other"
    elif index in (u.VFIO_PCI_ERR_IRQ_INDEX, u.VFIO_PCI_REQ_IRQ_INDEX):
        trigger = state.err_trigger if index == u.VFIO_PCI_ERR_IRQ_INDEX else state.req_trigger
        base = "on" if trigger is not None else "off"
    else:
        return "-"  # refused by vfio_set_irqs_validate_and_prepare() before this
    line = "+line" if index == u.VFIO_PCI_INTX_IRQ_INDEX and model.lines.intx_asserted else ""
    return base + line + ("+pending" if _first_fd_pending(model, flags, data) else "")


def _first_fd_pending(model: VfioPciModel, flags: int, data: bytes) -> bool:
    """Does the request's first eventfd hold a count (a virqfd runs at once)?"""
    if data_type_of(flags) != "EVENTFD" or len(data) < 4:
        return False
    fd = int(struct.unpack_from("<i", data)[0])
    if fd < 0:
        return False
    ref = model.eventfds.get(fd)  # a reference taken and dropped: no state change
    if isinstance(ref, int):
        return False
    try:
        return model.eventfds.pending(ref) > 0
    finally:
        model.eventfds.put(ref)


def classify(model: VfioPciModel, buf: bytes) -> Cell | None:
    """The cell of a SET_IRQS buffer before the call (outcome ``?``); None for a
    buffer shorter than the header (EFAULT before anything is read)."""
    if len(buf) < _HEADER.size:
        return None
    argsz, flags, index, start, count = _HEADER.unpack_from(buf)
    data = bytes(buf[_HEADER.size :])
    num_irqs = model.get_irq_count(index)
    name, data_type = index_name(index), data_type_of(flags)
    range_ = range_of(start, count, num_irqs)
    # vfio_set_irqs_validate_and_prepare() reads no action bit and no state:
    # one cell per index, data type and range, whatever the action.
    if set_irqs_validate_and_prepare(argsz, flags, index, start, count, num_irqs, _NUM_IRQS) < 0:
        return Cell(name, "*", data_type, range_, "-", "?")
    # vfio_pci_set_irqs_ioctl() picks the handler by index and action only.
    if model.handler_for(index, flags & u.VFIO_IRQ_SET_ACTION_TYPE_MASK) is None:
        return Cell(name, action_of(flags), data_type, "*", "-", "?")
    return Cell(name, action_of(flags), data_type, range_, state_of(model, index, flags, data), "?")
