"""MSI and MSI-X handlers (drivers/vfio/pci/vfio_pci_intrs.c, the MSI half).

Two generations: 6.1 keeps ``ctx[num_ctx]`` sized at enable; from 6.5
(``profile.dyn_ctx``) contexts live in an xarray, exist only while a trigger
is set, and MSI-X may grow vector by vector when the platform allows it.
"""

from __future__ import annotations

import errno
import struct

from vfio_hil import _uapi as u
from vfio_hil._model.base import ModelBase
from vfio_hil._model.state import IRQ_NONE

__all__ = ["MsiHandlers"]

_NONE = u.VFIO_IRQ_SET_DATA_NONE
_BOOL = u.VFIO_IRQ_SET_DATA_BOOL
_EVENTFD = u.VFIO_IRQ_SET_DATA_EVENTFD


class MsiHandlers(ModelBase):
    def irq_is(self, index: int) -> bool:
        return self.state.irq_type == index

    # vfio_msi_enable()
    def msi_enable(self, nvec: int, msix: bool) -> int:
        if not self.is_irq_none():
            return -errno.EINVAL
        granted = self.pci_alloc_irq_vectors(1, nvec, msix)
        if granted < nvec:
            return granted  # > 0: "the number of vectors we could have had"
        state = self.state
        state.irq_type = u.VFIO_PCI_MSIX_IRQ_INDEX if msix else u.VFIO_PCI_MSI_IRQ_INDEX
        if self.profile.dyn_ctx:
            state.allocated = set(range(nvec))
        else:
            state.num_ctx = nvec
        return 0

    # pci_alloc_irq_vectors(): -ERANGE for max < min, else what the host has
    def pci_alloc_irq_vectors(self, min_vecs: int, max_vecs: int, msix: bool = True) -> int:
        if max_vecs < min_vecs:
            return -errno.ERANGE
        granted = min(max_vecs, self.function.host_vectors)
        # msi_capability_init(): multi-MSI only where the MSI domain supports it
        # (MSI_FLAG_MULTI_PCI_MSI: x86 with interrupt remapping); else one vector
        if not msix and not self.function.multi_msi:
            granted = min(granted, 1)
        if granted < min_vecs:
            return -errno.ENOSPC
        self.msi_enabled_in_hw()
        return granted

    # The function's MSI/MSI-X enable bit is set (also when the enable fails
    # later and vfio_msi_disable() clears it again): QEMU's msi_write_config()
    # and msix_write_config() call pci_device_deassert_intx(), so the INTx line
    # drops while the device (edu) keeps its status; it rises again only at the
    # device's next raise.  Seen in the lab on 6.1.192 and 6.12.118: a raise
    # after a failed MSI enable signalled the INTx trigger.
    def msi_enabled_in_hw(self) -> None:
        self.lines.intx_asserted = False
        self.lines.intx_unseen = False

    # vfio_msi_disable()
    def msi_disable(self, msix: bool) -> None:
        state = self.state
        for vector in sorted(state.vectors):
            self.msi_set_vector_signal(vector, -1, msix)
        state.vectors.clear()
        state.allocated = set()
        state.num_ctx = 0
        state.irq_type = IRQ_NONE

    # vfio_msi_set_vector_signal()
    def msi_set_vector_signal(self, vector: int, fd: int, msix: bool) -> int:
        state = self.state
        if not self.profile.dyn_ctx and vector >= state.num_ctx:
            return -errno.EINVAL
        old = state.vectors.pop(vector, None)
        self.put(old)  # the old trigger is gone before the new fd is checked
        if fd < 0:
            return 0
        if self.profile.dyn_ctx and vector not in state.allocated:
            ret = self.msi_alloc_irq(vector, msix)
            if ret < 0:
                return ret
        ref = self.eventfds.get(fd)
        if isinstance(ref, int):
            return ref
        state.vectors[vector] = ref
        return 0

    # vfio_msi_alloc_irq(): pci_msix_alloc_irq_at() when dynamic MSI-X is possible
    def msi_alloc_irq(self, vector: int, msix: bool) -> int:
        if not msix or not self.has_dyn_msix:
            return -errno.EINVAL  # pci_irq_vector() of an unallocated vector
        in_use = len(self.state.allocated)
        if in_use >= self.function.host_vectors:
            return -errno.ENOSPC
        self.state.allocated.add(vector)
        return 0

    # vfio_msi_set_block()
    def msi_set_block(self, start: int, count: int, data: bytes | None, msix: bool) -> int:
        if not self.profile.dyn_ctx:
            num_ctx = self.state.num_ctx
            if start >= num_ctx or start + count > num_ctx:
                return -errno.EINVAL
        fds = struct.unpack_from(f"<{count}i", data) if data is not None else (-1,) * count
        ret = 0
        j = start
        for fd in fds:
            ret = self.msi_set_vector_signal(j, fd, msix)
            j += 1
            if ret:
                break
        if ret:
            # Unwind to "unassigned", not to what was there before.
            for vector in range(start, j):
                self.msi_set_vector_signal(vector, -1, msix)
        return ret

    # vfio_pci_set_msi_trigger()
    def set_msi_trigger(self, index: int, start: int, count: int, flags: int, data: bytes) -> int:
        msix = index == u.VFIO_PCI_MSIX_IRQ_INDEX
        if self.irq_is(index) and not count and flags & _NONE:
            self.msi_disable(msix)
            return 0
        if not (self.irq_is(index) or self.is_irq_none()):
            return -errno.EINVAL
        if flags & _EVENTFD:
            if self.irq_is(index):
                return self.msi_set_block(start, count, data, msix)
            ret = self.msi_enable(start + count, msix)
            if ret:
                return ret
            ret = self.msi_set_block(start, count, data, msix)
            if ret:
                self.msi_disable(msix)
            return ret
        if not self.irq_is(index):
            return -errno.EINVAL
        if not self.profile.dyn_ctx and start + count > self.state.num_ctx:
            return -errno.EINVAL
        vectors = self.state.vectors
        for i in range(start, start + count):
            trigger = vectors.get(i)
            if trigger is None:
                continue  # unassigned vectors are skipped silently
            if flags & _NONE or (flags & _BOOL and data[i - start]):
                self.signal(trigger)
        return 0

    # vfio_msihandler(): the device wrote vector's MSI message
    def msi_fired(self, vector: int) -> None:
        if self.state.irq_type in (u.VFIO_PCI_MSI_IRQ_INDEX, u.VFIO_PCI_MSIX_IRQ_INDEX):
            trigger = self.state.vectors.get(vector)
            if trigger is not None:
                self.signal(trigger)
