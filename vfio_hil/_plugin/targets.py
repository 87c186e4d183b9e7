"""What the session knows about each target, read once at configure time."""

from __future__ import annotations

from dataclasses import dataclass, field

from vfio_hil._errors import VfioError, VfioHilError
from vfio_hil._irq import IrqIndex, IrqInfo
from vfio_hil._model.profile import KernelProfile
from vfio_hil._needs import Facts
from vfio_hil._targets import Target

__all__ = ["TargetInfo", "probe"]

# NOIOMMU gives userspace DMA with no protection: the header says so in words.
_NO_IOMMU = " (no IOMMU: unsafe NOIOMMU mode)"


@dataclass
class TargetInfo:
    target: Target
    irqs: dict[int, IrqInfo] = field(default_factory=dict)
    ids: str = "?"
    driver: str = "?"
    group: str = "?"
    iommu: str = "?"  # the open path: group, cdev, noiommu (a SimDevice: -)
    kernel: KernelProfile | None = None
    stimulus: bool = False
    error: str | None = None
    facts: Facts | None = None  # what markers and requires: are checked against

    def junit_properties(self) -> list[tuple[str, str]]:
        """What JUnit XML records about each result: which device, which kernel."""
        kernel = self.kernel.name if self.kernel else "?"
        return [
            ("vfio_device", f"{self.target.spec} [{self.ids}]"),
            ("vfio_kernel", kernel),
            ("vfio_iommu", self.iommu),
        ]

    def header(self) -> str:
        if self.error:
            return f"{self.target.spec}: cannot open: {self.error}"
        table = " ".join(
            f"{IrqIndex(i).name}={int(info.flags):#x}/{info.count}" for i, info in self.irqs.items()
        )
        kernel = self.kernel.name if self.kernel else "?"
        return (
            f"{self.target.spec} [{self.ids}] driver={self.driver} group={self.group} "
            f"iommu={self.iommu}{_NO_IOMMU if self.iommu == 'noiommu' else ''} "
            f"kernel={kernel} irqs: {table}"
        )


def probe(target: Target) -> TargetInfo:
    """Open ``target`` once for its IRQ table, ids and kernel; never raises."""
    info = TargetInfo(target)
    try:
        with target.hold(), target.open() as device:
            info.facts = Facts.of(device, target.spec)
            info.irqs = dict(info.facts.irqs)
            vendor, dev = device.read_region(7, 0, 2), device.read_region(7, 2, 2)
            info.ids = f"{int.from_bytes(vendor, 'little'):04x}:{int.from_bytes(dev, 'little'):04x}"
            info.kernel = device.kernel
            info.stimulus = device.stimulus is not None
            pci = getattr(device, "pci", None)  # a HostDevice; a RemoteDevice says its own
            info.driver = pci.driver if pci is not None else getattr(device, "driver", "simulated")
            info.group = str(pci.iommu_group) if pci is not None else getattr(device, "group", "-")
            info.iommu = str(getattr(device, "iommu", "-"))
    except (VfioHilError, VfioError, OSError, TimeoutError) as err:
        info.error = str(err)
    return info
