"""Which SET_IRQS requests every vfio-pci device refuses, whatever its state.

A request is *invalid* when ``vfio_set_irqs_validate_and_prepare`` rejects its
header for the device's GET_IRQ_INFO counts (EINVAL), or when vfio-pci has no
handler for its action on that index in any state (ENOTTY: no action or
several, MASK/UNMASK on MSI, MSI-X, ERR or REQ, INTx MASK with an eventfd).
Everything else is *valid*: the header passes and a handler runs, which may
still refuse it in the device's current state (e.g. a loopback on a disabled
index).
"""

from __future__ import annotations

from collections.abc import Mapping

from vfio_hil import _uapi as u
from vfio_hil._lockstep.steps import SetIrqs
from vfio_hil._model.validate import set_irqs_validate_and_prepare

__all__ = ["HEADER_SIZE", "payload_size", "refusal"]

HEADER_SIZE = u.IRQ_SET_HEADER_SIZE
_ACTIONS = (
    u.VFIO_IRQ_SET_ACTION_MASK,
    u.VFIO_IRQ_SET_ACTION_UNMASK,
    u.VFIO_IRQ_SET_ACTION_TRIGGER,
)


def payload_size(step: SetIrqs) -> int:
    """The bytes of payload ``step`` carries (what ``argsz=None`` counts)."""
    if step.fds is not None:
        return 4 * len(step.fds)
    return len(step.bools or b"")


def refusal(step: SetIrqs, counts: Mapping[int, int]) -> str | None:
    """Why every device with these counts refuses ``step`` in every state, or None."""
    argsz = step.argsz if step.argsz is not None else HEADER_SIZE + payload_size(step)
    num_irqs = counts.get(step.index, 0) if 0 <= step.index < u.VFIO_PCI_NUM_IRQS else 0
    size = set_irqs_validate_and_prepare(
        argsz, step.flags, step.index, step.start, step.count, num_irqs, u.VFIO_PCI_NUM_IRQS
    )
    if size < 0:
        return "the header fails vfio_set_irqs_validate_and_prepare (EINVAL)"
    action = step.flags & u.VFIO_IRQ_SET_ACTION_TYPE_MASK
    if action not in _ACTIONS:
        return "no single action: vfio-pci has no handler (ENOTTY)"
    if step.index != u.VFIO_PCI_INTX_IRQ_INDEX and action != u.VFIO_IRQ_SET_ACTION_TRIGGER:
        return "only INTx can be masked or unmasked (ENOTTY)"
    if action == u.VFIO_IRQ_SET_ACTION_MASK and step.flags & u.VFIO_IRQ_SET_DATA_EVENTFD:
        return "INTx MASK with an eventfd is not implemented (ENOTTY)"
    return None
