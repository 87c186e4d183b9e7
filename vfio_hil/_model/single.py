"""ERR and REQ triggers (``vfio_pci_set_ctx_trigger_single`` and its callers)."""

from __future__ import annotations

import errno
import struct

from vfio_hil import _uapi as u
from vfio_hil._model.base import ModelBase
from vfio_hil._model.eventfds import EventfdRef

__all__ = ["SingleTriggerHandlers"]

_NONE = u.VFIO_IRQ_SET_DATA_NONE
_BOOL = u.VFIO_IRQ_SET_DATA_BOOL
_EVENTFD = u.VFIO_IRQ_SET_DATA_EVENTFD


class SingleTriggerHandlers(ModelBase):
    # vfio_pci_set_ctx_trigger_single(): returns (ret, the new trigger)
    def set_ctx_trigger_single(
        self, trigger: EventfdRef | None, count: int, flags: int, data: bytes
    ) -> tuple[int, EventfdRef | None]:
        if flags & _NONE:
            if trigger is not None:
                if count:
                    self.signal(trigger)
                    return 0, trigger
                self.put(trigger)
                return 0, None
            return -errno.EINVAL, None  # NONE with nothing set falls to the end
        if flags & _BOOL:
            if not count:
                return -errno.EINVAL, trigger
            if data[0] and trigger is not None:
                self.signal(trigger)
            return 0, trigger
        if flags & _EVENTFD:
            if not count:
                return -errno.EINVAL, trigger
            fd = int(struct.unpack_from("<i", data)[0])
            if fd == -1:
                self.put(trigger)
                return 0, None
            if fd >= 0:
                ref = self.eventfds.get(fd)  # the old trigger is kept on failure
                if isinstance(ref, int):
                    return ref, trigger
                self.put(trigger)
                return 0, ref
            # fd <= -2: a no-op until 98693e0897f7 made it EINVAL
            return (-errno.EINVAL if self.profile.rcu_err_req else 0), trigger
        return -errno.EINVAL, trigger

    # vfio_pci_set_err_trigger()
    def set_err_trigger(self, index: int, start: int, count: int, flags: int, data: bytes) -> int:
        if start != 0 or count > 1:
            return -errno.EINVAL
        ret, self.state.err_trigger = self.set_ctx_trigger_single(
            self.state.err_trigger, count, flags, data
        )
        return ret

    # vfio_pci_set_req_trigger()
    def set_req_trigger(self, index: int, start: int, count: int, flags: int, data: bytes) -> int:
        if start != 0 or count > 1:
            return -errno.EINVAL
        ret, self.state.req_trigger = self.set_ctx_trigger_single(
            self.state.req_trigger, count, flags, data
        )
        return ret
