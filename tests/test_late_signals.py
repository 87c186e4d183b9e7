"""Which steps may signal after the ioctl returns (and so get a settle time).

The kernel delivers INTx from interrupt context and the unmask eventfd's
re-fire from a workqueue; a read straight after such a step can miss the
signal, so the differential runner and the scenario player wait for it.
"""

from __future__ import annotations

from vfio_hil import _uapi as u
from vfio_hil._lockstep import LateSignals
from vfio_hil._lockstep.steps import Clear, Raise, SetIrqs, Step

_LOOP = u.VFIO_IRQ_SET_ACTION_TRIGGER | u.VFIO_IRQ_SET_DATA_NONE
_LOOP_BOOL = u.VFIO_IRQ_SET_ACTION_TRIGGER | u.VFIO_IRQ_SET_DATA_BOOL
_FDS = u.VFIO_IRQ_SET_ACTION_TRIGGER | u.VFIO_IRQ_SET_DATA_EVENTFD
ERR, REQ = 3, 4


def _late_after_raise(step: Step, raised: bool = True) -> bool:
    late = LateSignals()
    if raised:
        late.after(Raise(1))
    return late.after(step)


def test_an_err_or_req_loopback_while_raised_may_refire_intx_late() -> None:
    # Its eventfd may be the INTx unmask eventfd: virqfd_wakeup() unmasks
    # inside eventfd_signal() and schedules the still-asserted line's re-fire
    # (missed by an immediate read on 7.2.13 in CI).
    for index in (ERR, REQ):
        assert _late_after_raise(SetIrqs(_LOOP, index, 0, 1))
        assert _late_after_raise(SetIrqs(_LOOP_BOOL, index, 0, 1, bools=b"\x01"))


def test_err_req_steps_that_signal_nothing_are_not_late() -> None:
    assert not _late_after_raise(SetIrqs(_FDS, REQ, 0, 1, fds=("e0",)))
    assert not _late_after_raise(SetIrqs(_LOOP, REQ, 0, 1), raised=False)


def test_clearing_every_bit_ends_the_late_window() -> None:
    late = LateSignals()
    late.after(Raise(1))
    late.after(Clear())
    assert not late.after(SetIrqs(_LOOP, REQ, 0, 1))
    assert not late.after(SetIrqs(_LOOP, 0, 0, 1))
