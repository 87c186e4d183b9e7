"""The plugin's markers and how each rules a target in or out."""

from __future__ import annotations

import pytest

from vfio_hil._plugin.targets import TargetInfo

__all__ = ["register", "unmet"]

LINES = (
    "vfio_irq(index, min_count=1, flags=0): run only on targets whose GET_IRQ_INFO for "
    "index reports at least min_count vectors and all of flags",
    "vfio_stimulus: run only on targets that can raise interrupts on demand",
    "vfio_kernel(range): run only on targets whose kernel is in range, e.g. '>=6.5,<7'",
)


def register(config: pytest.Config) -> None:
    for line in LINES:
        config.addinivalue_line("markers", line)


def unmet(item: pytest.Item, info: TargetInfo) -> str | None:
    """Why ``info``'s target cannot run ``item`` (None: it can)."""
    for mark in item.iter_markers("vfio_irq"):
        reason = _irq(mark, info)
        if reason:
            return reason
    if item.get_closest_marker("vfio_stimulus") and not info.stimulus:
        return f"{info.target.spec} cannot raise interrupts on demand"
    for mark in item.iter_markers("vfio_kernel"):
        reason = _kernel(mark, info)
        if reason:
            return reason
    return None


def _irq(mark: pytest.Mark, info: TargetInfo) -> str | None:
    from vfio_hil._irq import IrqIndex

    def params(index: int, min_count: int = 1, flags: int = 0) -> tuple[int, int, int]:
        return int(index), min_count, int(flags)

    try:
        index, min_count, flags = params(*mark.args, **mark.kwargs)
    except TypeError as err:
        raise pytest.UsageError(f"vfio_irq(index, min_count=1, flags=0): {err}") from None
    irq = info.irqs.get(index)
    name = IrqIndex(index).name if index in IrqIndex._value2member_map_ else str(index)
    count = irq.count if irq else 0
    if count < min_count:
        return f"{info.target.spec} has {count} {name} vector(s); the test needs {min_count}"
    if irq is not None and int(irq.flags) & flags != flags:
        return f"{info.target.spec}'s {name} flags {int(irq.flags):#x} lack {flags:#x}"
    return None


def _kernel(mark: pytest.Mark, info: TargetInfo) -> str | None:
    from vfio_hil._kernel_range import in_range

    if len(mark.args) != 1 or not isinstance(mark.args[0], str):
        raise pytest.UsageError("vfio_kernel(range): give one range string, e.g. '>=6.5'")
    try:
        ok = info.kernel is not None and in_range(info.kernel.version, mark.args[0])
    except ValueError as err:
        raise pytest.UsageError(str(err)) from None
    if ok:
        return None
    kernel = info.kernel.name if info.kernel else "unknown"
    return f"{info.target.spec} runs kernel {kernel}, outside {mark.args[0]}"
