"""``SimDevice``: a simulated vfio-pci function that signals real eventfds."""

from __future__ import annotations

import dataclasses
import errno
import threading
from typing import Any

from vfio_hil import _uapi as u
from vfio_hil._device import DeviceInfo, Platform, RegionInfo, Stimulus
from vfio_hil._errors import VfioError
from vfio_hil._hw import (
    CAP_ID_EXP,
    CAP_ID_MSI,
    CAP_ID_MSIX,
    CMD_MASTER,
    CMD_MEMORY,
    EDU_DEVICE,
    EDU_VENDOR,
)
from vfio_hil._irq import _U32, IrqInfo, IrqSet, _field, _flag, _integer
from vfio_hil._model import KernelProfile, PciFunction, VfioPciModel, kernel_profile
from vfio_hil._model.profile import DEFAULT_KERNEL
from vfio_hil._model.state import IrqState
from vfio_hil._sim.config import ConfigSpace
from vfio_hil._sim.edu import EDU_BAR0_SIZE, EduRegisters
from vfio_hil._sim.eventfds import HeldEventfd, RealEventfds
from vfio_hil._sim.unmask import UnmaskWatcher

__all__ = ["DEFAULT_KERNEL", "SimDevice"]

_REGION_SHIFT = 40  # vfio-pci's VFIO_PCI_INDEX_TO_OFFSET
_RW = u.VFIO_REGION_INFO_FLAG_READ | u.VFIO_REGION_INFO_FLAG_WRITE
VIRTIO_VENDOR = 0x1AF4
VIRTIO_RNG_DEVICE = 0x1044
# The lab's "kinds" devices (vfio_hil._lab.qemu): QEMU's NVMe (its VFs have
# the PF's id), the NEC xHCI, Intel's 82574L (e1000e).
NVME_VENDOR, NVME_DEVICE = 0x1B36, 0x0010
XHCI_NEC_VENDOR, XHCI_NEC_DEVICE = 0x1033, 0x0194
E1000E_VENDOR, E1000E_DEVICE = 0x8086, 0x10D3
# PCI_COMMAND at open of an SR-IOV VF: memory only.  A VF implements no
# memory-enable bit (pdev->no_command_memory), so vfio_config_init() sets the
# virtual one; QEMU's VF has no I/O BAR and leaves SERR off (read in the lab).
_VF_COMMAND_AT_OPEN = CMD_MEMORY
_HARDWARE = tuple(f.name for f in dataclasses.fields(PciFunction))
_OPTIONS = ("kernel", "model", "edu", "name", "vendor", "device")
_BYTES = (bytes, bytearray, memoryview)


def _override(fn: PciFunction, kw: dict[str, Any]) -> tuple[PciFunction, dict[str, Any]]:
    """Split preset keywords into hardware overrides and SimDevice options."""
    hardware = {k: v for k, v in kw.items() if k in _HARDWARE}
    rest = {k: v for k, v in kw.items() if k not in _HARDWARE}
    return dataclasses.replace(fn, **hardware), rest


def _check_options(
    function: object,
    hardware: dict[str, Any],
    model: object,
    edu: object,
    name: object,
    vendor: object,
    device: object,
) -> None:
    """SimDevice's arguments, before anything is built: each wrong one named."""
    unknown = [k for k in hardware if k not in _HARDWARE]
    if unknown:
        raise TypeError(
            f"SimDevice got an unknown keyword {unknown[0]!r}: it takes "
            f"{', '.join(_OPTIONS)} and PciFunction's fields {', '.join(_HARDWARE)}"
        )
    if function is not None and not isinstance(function, PciFunction):
        raise TypeError(
            f"function must be a PciFunction or None, not {type(function).__name__} "
            f"{function!r} (for a preset: SimDevice.edu(), SimDevice.virtio_msix())"
        )
    if function is not None and hardware:
        raise TypeError("give either a PciFunction or its fields as keywords, not both")
    if not (isinstance(model, type) and issubclass(model, VfioPciModel)):
        raise TypeError(f"model must be VfioPciModel or a subclass of it, not {model!r}")
    _flag("edu", edu)
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, not {type(name).__name__} {name!r}")
    _field("vendor", vendor, 0, 0xFFFF)
    _field("device", device, 0, 0xFFFF)


def _check_region_args(index: object, offset: object, size: object) -> None:
    """A region access's numbers must be ints; their range is the region's (EINVAL).

    Called only when one is not exactly an int: the common case costs three
    ``type()`` tests, an IntEnum passes here, a bool, float or str is named.
    """
    _integer("index", index)
    _integer("offset", offset)
    _integer("size", size)


def _capabilities(fn: PciFunction) -> tuple[int, ...]:
    caps = [CAP_ID_EXP] if fn.pcie else []
    caps += [CAP_ID_MSI] if fn.msi_vectors else []
    caps += [CAP_ID_MSIX] if fn.msix_vectors else []
    return tuple(caps)


class SimDevice:
    """A simulated vfio-pci function, configured like hardware.

    The ``model`` class answers the ioctls (subclass ``VfioPciModel`` and
    override one handler to make a behaviour variant); eventfds are real and
    are checked as the kernel checks them.  With ``edu=True`` BAR0 holds
    QEMU edu's interrupt registers and ``stimulus`` can raise interrupts.
    """

    def __init__(
        self,
        function: PciFunction | None = None,
        *,
        kernel: str | KernelProfile = DEFAULT_KERNEL,
        model: type[VfioPciModel] = VfioPciModel,
        edu: bool = False,
        name: str = "sim",
        vendor: int = 0x1B36,
        device: int = 0x0001,
        **hardware: Any,
    ) -> None:
        _check_options(function, hardware, model, edu, name, vendor, device)
        self.function = function or PciFunction(**hardware)
        self.profile = kernel if isinstance(kernel, KernelProfile) else kernel_profile(kernel)
        self._name = name
        self._lock = threading.RLock()
        self._eventfds = RealEventfds()
        self.model = model(self.function, self.profile, self._eventfds)
        self._config = ConfigSpace(
            vendor,
            device,
            4096 if self.function.pcie else 256,
            self.function.intx_pin,
            self.model.write_intx_disable,
            _capabilities(self.function),
            self.model.command_at_open(),
        )
        self._edu = (
            EduRegisters(self._msi_on, self._send_msi, self.model.set_intx_level) if edu else None
        )
        self._watcher = UnmaskWatcher(
            self._lock, self._eventfds, self.model.unmask_eventfd_fired, self._unmask_closed
        )
        self._closed = False
        self._stimulus: Stimulus | None = None
        self.model.open_device()

    # --- presets -------------------------------------------------------------------

    @classmethod
    def edu(cls, kernel: str | KernelProfile = DEFAULT_KERNEL, **kw: Any) -> SimDevice:
        """QEMU's edu: INTx, one MSI vector, no MSI-X, conventional PCI, a stimulus.

        As in QEMU, a line asserted before INTx is enabled is not delivered at
        enable (``intx_level_at_enable=False``: QEMU's IO-APIC drops it).

        Keywords naming ``PciFunction`` fields override the preset's hardware.
        """
        fn = PciFunction(
            intx_pin=True,
            msi_vectors=1,
            msix_vectors=0,
            pcie=False,
            can_reset=False,
            intx_level_at_enable=False,
        )
        kw.setdefault("name", "sim:edu")
        fn, kw = _override(fn, kw)
        return cls(fn, kernel=kernel, edu=True, vendor=EDU_VENDOR, device=EDU_DEVICE, **kw)

    @classmethod
    def virtio_msix(
        cls, vectors: int = 64, kernel: str | KernelProfile = DEFAULT_KERNEL, **kw: Any
    ) -> SimDevice:
        """A PCIe virtio function: INTx, no MSI, ``vectors`` MSI-X, dynamic MSI-X."""
        fn = PciFunction(
            intx_pin=True,
            msi_vectors=0,
            msix_vectors=vectors,
            pcie=True,
            dyn_msix=True,
            intx_level_at_enable=False,
        )
        kw.setdefault("name", f"sim:virtio_msix:{vectors}")
        fn, kw = _override(fn, kw)
        return cls(fn, kernel=kernel, vendor=VIRTIO_VENDOR, device=VIRTIO_RNG_DEVICE, **kw)

    @classmethod
    def nvme_vf(cls, kernel: str | KernelProfile = DEFAULT_KERNEL, **kw: Any) -> SimDevice:
        """An SR-IOV VF of QEMU's NVMe, as the lab's ``nvme-vf``: no INTx (for a
        VF vfio_config_init() zeroes the virtual pin, though QEMU's VF reads
        pin 1, and vfio_pci_get_irq_count() counts that pin), no MSI,
        one MSI-X vector (the VF's share before the PF assigns it more), PCIe,
        FLR, PCI_COMMAND 0x0002 at open."""
        fn = PciFunction(
            intx_pin=False,
            msi_vectors=0,
            msix_vectors=1,
            pcie=True,
            dyn_msix=True,
            intx_level_at_enable=False,
            command_at_open=_VF_COMMAND_AT_OPEN,
        )
        kw.setdefault("name", "sim:nvme_vf")
        fn, kw = _override(fn, kw)
        return cls(fn, kernel=kernel, vendor=NVME_VENDOR, device=NVME_DEVICE, **kw)

    @classmethod
    def xhci_msi(cls, kernel: str | KernelProfile = DEFAULT_KERNEL, **kw: Any) -> SimDevice:
        """QEMU's NEC xHCI with MSI on and MSI-X off, as the lab's ``xhci-msi``:
        INTx, 16 MSI vectors (no per-vector mask), no MSI-X, PCIe (an
        integrated endpoint), no reset method (VFIO_DEVICE_RESET: EINVAL)."""
        fn = PciFunction(
            intx_pin=True,
            msi_vectors=16,
            msix_vectors=0,
            pcie=True,
            can_reset=False,
            intx_level_at_enable=False,
        )
        kw.setdefault("name", "sim:xhci_msi")
        fn, kw = _override(fn, kw)
        return cls(fn, kernel=kernel, vendor=XHCI_NEC_VENDOR, device=XHCI_NEC_DEVICE, **kw)

    @classmethod
    def e1000e(cls, kernel: str | KernelProfile = DEFAULT_KERNEL, **kw: Any) -> SimDevice:
        """QEMU's e1000e (Intel 82574L), as the lab's ``e1000e``: INTx, one MSI
        vector, five MSI-X vectors, PCIe, resettable."""
        fn = PciFunction(
            intx_pin=True,
            msi_vectors=1,
            msix_vectors=5,
            pcie=True,
            dyn_msix=True,
            intx_level_at_enable=False,
        )
        kw.setdefault("name", "sim:e1000e")
        fn, kw = _override(fn, kw)
        return cls(fn, kernel=kernel, vendor=E1000E_VENDOR, device=E1000E_DEVICE, **kw)

    # --- Device protocol ---------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def kernel(self) -> KernelProfile:
        return self.profile

    @property
    def platform(self) -> Platform:
        fn = self.function
        return Platform(fn.intx_level_at_enable, fn.pci_2_3, fn.host_vectors, fn.multi_msi)

    @property
    def stimulus(self) -> Stimulus | None:
        if self._edu is None:
            return None
        if self._stimulus is None:
            from vfio_hil._host.edu import EduStimulus

            self._stimulus = EduStimulus(self)
        return self._stimulus

    def info(self) -> DeviceInfo:
        self._check_open("VFIO_DEVICE_GET_INFO")
        flags = u.VFIO_DEVICE_FLAGS_PCI | (
            u.VFIO_DEVICE_FLAGS_RESET if self.function.can_reset else 0
        )
        return DeviceInfo(flags, u.VFIO_PCI_NUM_REGIONS, u.VFIO_PCI_NUM_IRQS)

    def irq_info(self, index: int) -> IrqInfo:
        # A number, as the ioctl's u32 field takes it: an unknown one is the
        # kernel's EINVAL, a name ("MSIX") a TypeError.
        index = _field("index", index, 0, _U32)
        self._check_open("VFIO_DEVICE_GET_IRQ_INFO")
        with self._lock:
            answer = self.model.get_irq_info(index)
        if isinstance(answer, int):
            raise VfioError(-answer, "VFIO_DEVICE_GET_IRQ_INFO", f"index={index}")
        return answer

    def set_irqs(self, irqset: IrqSet) -> int:
        if not isinstance(irqset, IrqSet):
            raise TypeError(
                f"set_irqs takes an IrqSet (IrqSet.trigger(...), IrqSet.raw(...), ...), "
                f"not {type(irqset).__name__} {irqset!r}"
            )
        self._check_open("VFIO_DEVICE_SET_IRQS")
        with self._lock:
            self._watcher.catch_up()
            ret = self.model.ioctl_set_irqs(irqset.pack())
            self._follow_unmask_eventfd()
        if ret < 0:
            raise VfioError(-ret, "VFIO_DEVICE_SET_IRQS", irqset)
        return ret

    def reset(self) -> None:
        self._check_open("VFIO_DEVICE_RESET")
        with self._lock:
            self._watcher.catch_up()
            ret = self.model.reset()
        if ret < 0:
            raise VfioError(-ret, "VFIO_DEVICE_RESET")

    def region_info(self, index: int) -> RegionInfo:
        if type(index) is not int:
            _check_region_args(index, 0, 0)
        self._check_open("VFIO_DEVICE_GET_REGION_INFO")
        if not 0 <= index < u.VFIO_PCI_NUM_REGIONS:
            raise VfioError(errno.EINVAL, "VFIO_DEVICE_GET_REGION_INFO", f"index={index}")
        size, flags = 0, 0
        if index == u.VFIO_PCI_CONFIG_REGION_INDEX:
            size, flags = self._config.size, _RW
        elif index == u.VFIO_PCI_BAR0_REGION_INDEX and self._edu is not None:
            size, flags = EDU_BAR0_SIZE, _RW | u.VFIO_REGION_INFO_FLAG_MMAP
        return RegionInfo(index, flags, size, index << _REGION_SHIFT)

    def read_region(self, index: int, offset: int, size: int) -> bytes:
        if type(index) is not int or type(offset) is not int or type(size) is not int:
            _check_region_args(index, offset, size)
        with self._lock:
            self._watcher.catch_up()
            if index == u.VFIO_PCI_CONFIG_REGION_INDEX:
                self._check_range(index, offset, size, "read")
                return self._config.read(offset, size)
            self._check_bar(index, offset, size, "read")
            assert self._edu is not None
            return self._edu.read(offset, size)

    def write_region(self, index: int, offset: int, data: bytes) -> None:
        if type(index) is not int or type(offset) is not int:
            _check_region_args(index, offset, 0)
        if not isinstance(data, _BYTES):
            raise TypeError(f"data must be bytes, not {type(data).__name__} {data!r}")
        with self._lock:
            self._watcher.catch_up()
            if index == u.VFIO_PCI_CONFIG_REGION_INDEX:
                self._check_range(index, offset, len(data), "write")
                self._config.write(offset, data)
                return
            self._check_bar(index, offset, len(data), "write")
            assert self._edu is not None
            self._edu.write(offset, data)

    def close(self) -> None:
        """The last close: vfio-pci disables every index and drops ERR/REQ."""
        if self._closed:
            return
        with self._lock:
            self._watcher.catch_up()
            self.model.close_device()
            self._follow_unmask_eventfd()
            self._closed = True
        self._watcher.stop()

    def quiesce(self) -> bool:
        """Let every write to the unmask eventfd so far take effect, now.

        The kernel unmasks inside the writer's ``write(2)``; here a thread
        does it soon after, and every device operation first catches up.
        Everything else is delivered synchronously, so afterwards nothing is
        pending: always True.
        """
        with self._lock:
            self._watcher.catch_up()
        return True

    def reopen(self) -> SimDevice:
        """Close, then open the same function again: device-side state persists."""
        self.close()
        with self._lock:
            self.model.state = IrqState()
            self.model.open_device()
            self._config.restore_command(self.model.command_at_open())
            self._watcher = UnmaskWatcher(
                self._lock, self._eventfds, self.model.unmask_eventfd_fired, self._unmask_closed
            )
            self._closed = False
        return self

    def __enter__(self) -> SimDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SimDevice({self._name}, kernel={self.profile.name})"

    # --- internals ---------------------------------------------------------------------

    def _msi_on(self) -> bool:
        return self.model.state.irq_type == u.VFIO_PCI_MSI_IRQ_INDEX

    def _send_msi(self, vector: int) -> None:
        # QEMU drops an MSI write while bus mastering is off.
        if self._config.command & CMD_MASTER:
            self.model.msi_fired(vector)

    def _unmask_closed(self) -> None:
        self.model.unmask_eventfd_released()
        self._follow_unmask_eventfd()

    def _follow_unmask_eventfd(self) -> None:
        intx = self.model.state.intx
        ref = intx.unmask if intx is not None else None
        assert ref is None or isinstance(ref, HeldEventfd)
        self._watcher.watch(ref)

    def _check_open(self, operation: str) -> None:
        if self._closed:
            raise VfioError(errno.EBADF, operation, "device is closed")

    def _check_range(self, index: int, offset: int, size: int, what: str) -> None:
        self._check_open(f"region {index} {what}")
        limit = self.region_info(index).size
        if offset < 0 or size < 0 or offset + size > limit:
            raise VfioError(
                errno.EINVAL, f"region {index} {what}", f"offset={offset:#x} size={size}"
            )

    def _check_bar(self, index: int, offset: int, size: int, what: str) -> None:
        self._check_range(index, offset, size, what)
        # vfio_pci_bar_rw(): BAR access needs PCI_COMMAND.MEMORY in the virtual config.
        if not self._config.command & CMD_MEMORY:
            raise VfioError(errno.EIO, f"region {index} {what}", "memory decoding is off")
