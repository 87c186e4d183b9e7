"""What a test needs of a target, and whether a target has it: one check.

The plugin's markers (``vfio_irq``, ``vfio_stimulus``, ``vfio_kernel``) and a
scenario's ``requires:`` both become a ``Needs``; a target is described once
by its ``Facts`` (read when it is first opened).  ``Needs.unmet`` says, in
one line, why a target cannot run the test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from vfio_hil._device import Device
from vfio_hil._irq import IrqIndex, IrqInfo
from vfio_hil._kernel_range import in_range
from vfio_hil._model.profile import KernelProfile

__all__ = ["Facts", "Needs"]


@dataclass(frozen=True)
class Facts:
    """What a target is, as far as a test's needs go."""

    spec: str
    kernel: KernelProfile
    irqs: Mapping[int, IrqInfo] = field(default_factory=dict)
    stimulus: bool = False
    pcie: bool = False
    dyn_msix: bool = False
    can_reset: bool = False
    multi_msi: bool = True

    @classmethod
    def of(cls, device: Device, spec: str | None = None) -> Facts:
        from vfio_hil._lockstep.twin import function_of, irq_table

        irqs = irq_table(device)
        fn = function_of(device)
        return cls(
            spec or device.name,
            device.kernel,
            irqs,
            device.stimulus is not None,
            fn.pcie,
            fn.dyn_msix,
            fn.can_reset,
            fn.multi_msi,
        )

    def count(self, index: int) -> int:
        info = self.irqs.get(index)
        return info.count if info else 0


def _name(index: int) -> str:
    return IrqIndex(index).name if index in IrqIndex._value2member_map_ else str(index)


@dataclass(frozen=True)
class Needs:
    """Every condition must hold; ``None`` or empty: no condition."""

    counts: tuple[tuple[int, int], ...] = ()  # (index, least GET_IRQ_INFO count)
    exact: tuple[tuple[int, int], ...] = ()  # (index, the count it must have)
    flags: tuple[tuple[int, int], ...] = ()  # (index, GET_IRQ_INFO flags it must have)
    stimulus: bool | None = None
    pcie: bool | None = None
    dyn_msix: bool | None = None
    reset: bool | None = None
    kernels: tuple[str, ...] = ()  # ranges such as ">=6.5,<7" (all must hold)
    multi_msi: bool | None = None

    def __and__(self, other: Needs) -> Needs:
        def pick(a: bool | None, b: bool | None) -> bool | None:
            return a if b is None else b

        return Needs(
            self.counts + other.counts,
            self.exact + other.exact,
            self.flags + other.flags,
            pick(self.stimulus, other.stimulus),
            pick(self.pcie, other.pcie),
            pick(self.dyn_msix, other.dyn_msix),
            pick(self.reset, other.reset),
            self.kernels + other.kernels,
            pick(self.multi_msi, other.multi_msi),
        )

    def unmet(self, facts: Facts) -> str | None:
        """Why the target ``facts`` describes cannot run the test, or None."""
        spec = facts.spec
        for text in self.kernels:
            if not in_range(facts.kernel.version, text):
                return f"{spec}: needs kernel {text}; it runs {facts.kernel.name}"
        for index, least in self.counts:
            if facts.count(index) < least:
                have = facts.count(index)
                return f"{spec}: needs {_name(index)} count >= {least}; it has {have}"
        for index, exact in self.exact:
            if facts.count(index) != exact:
                have = facts.count(index)
                return f"{spec}: needs {_name(index)} count == {exact}; it has {have}"
        for index, flags in self.flags:
            info = facts.irqs.get(index)
            have = int(info.flags) if info else 0
            if have & flags != flags:
                return f"{spec}: needs {_name(index)} flags {flags:#x}; it has {have:#x}"
        if self.stimulus is not None and facts.stimulus != self.stimulus:
            return (
                f"{spec}: needs a device {'with' if self.stimulus else 'without'} a stimulus (edu)"
            )
        for what, wanted, actual in (
            ("PCI Express", self.pcie, facts.pcie),
            ("dynamic MSI-X", self.dyn_msix, facts.dyn_msix),
            ("VFIO_DEVICE_RESET", self.reset, facts.can_reset),
            ("multi-vector MSI (interrupt remapping)", self.multi_msi, facts.multi_msi),
        ):
            if wanted is not None and wanted != actual:
                has = "it has it" if actual else "it has none"
                return f"{spec}: needs {'' if wanted else 'no '}{what}; {has}"
        return None
