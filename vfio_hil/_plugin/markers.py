"""The plugin's markers and how each rules a target in or out.

A marker with a bad argument fails the collection of its test with one line
that names the test, the marker and what it accepts: no traceback from here.
"""

from __future__ import annotations

import inspect
from typing import NoReturn

import pytest

from vfio_hil._fuzz.profiles import register_profiles
from vfio_hil._plugin.targets import TargetInfo

__all__ = ["register", "unmet"]

# hypothesis loads --hypothesis-profile in its pytest_configure, which may run
# before ours: pytest importing its plugins (plugin.py imports this module) is
# the one moment early enough for the vfio-hil profiles to exist by then.
register_profiles()

LINES = (
    "vfio_irq(index, min_count=1, flags=0): run only on targets whose GET_IRQ_INFO for "
    "index reports at least min_count vectors and all of flags",
    "vfio_stimulus: run only on targets that can raise interrupts on demand",
    "vfio_kernel(range): run only on targets whose kernel is in range, e.g. '>=6.5,<7'",
)
_IRQ_PARAMS = inspect.signature(lambda index, min_count=1, flags=0: None)
_IRQ_USAGE = "vfio_irq(index, min_count=1, flags=0)"
_KERNEL_USAGE = "vfio_kernel(range) with one range string, e.g. '>=6.5' or '>=6.1,<6.9'"


class _Check:
    """Checks every test's markers as it is collected."""

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        node = metafunc.definition
        for mark in node.iter_markers("vfio_irq"):
            _irq_args(node, mark)
        for mark in node.iter_markers("vfio_kernel"):
            _kernel_range(node, mark)


def register(config: pytest.Config) -> None:
    for line in LINES:
        config.addinivalue_line("markers", line)
    config.pluginmanager.register(_Check(), "vfio_hil-marker-check")


def unmet(item: pytest.Item, info: TargetInfo) -> str | None:
    """Why ``info``'s target cannot run ``item`` (None: it can)."""
    for mark in item.iter_markers("vfio_irq"):
        reason = _irq(item, mark, info)
        if reason:
            return reason
    if item.get_closest_marker("vfio_stimulus") and not info.stimulus:
        return f"{info.target.spec} cannot raise interrupts on demand"
    for mark in item.iter_markers("vfio_kernel"):
        reason = _kernel(item, mark, info)
        if reason:
            return reason
    return None


def _bad(node: pytest.Item, mark: pytest.Mark, problem: str) -> NoReturn:
    """Fail, in one line, a test whose marker has a bad argument (collection or setup)."""
    args = [repr(a) for a in mark.args] + [f"{k}={v!r}" for k, v in mark.kwargs.items()]
    where = f"{node.nodeid}: @pytest.mark.{mark.name}({', '.join(args)})"
    pytest.fail(f"{where}: {problem}", pytrace=False)


def _irq_args(node: pytest.Item, mark: pytest.Mark) -> tuple[int, int, int]:
    from vfio_hil._irq import _U32, _field, irq_index

    try:
        given = _IRQ_PARAMS.bind(*mark.args, **mark.kwargs)
        given.apply_defaults()
        index, min_count, flags = given.args
        return (
            irq_index(index),
            _field("min_count", min_count, 0, _U32),
            _field("flags", flags, 0, _U32),
        )
    except (TypeError, ValueError) as err:  # wrong arguments, or a bad value
        problem = str(err)
    _bad(node, mark, f"{problem}; use {_IRQ_USAGE}")


def _irq(item: pytest.Item, mark: pytest.Mark, info: TargetInfo) -> str | None:
    from vfio_hil._irq import IrqIndex

    index, min_count, flags = _irq_args(item, mark)
    irq = info.irqs.get(index)
    name = IrqIndex(index).name if index in IrqIndex._value2member_map_ else str(index)
    count = irq.count if irq else 0
    if count < min_count:
        return f"{info.target.spec} has {count} {name} vector(s); the test needs {min_count}"
    if irq is not None and int(irq.flags) & flags != flags:
        return f"{info.target.spec}'s {name} flags {int(irq.flags):#x} lack {flags:#x}"
    return None


def _kernel_range(node: pytest.Item, mark: pytest.Mark) -> str:
    from vfio_hil._kernel_range import parse_range

    if len(mark.args) != 1 or mark.kwargs or not isinstance(mark.args[0], str):
        _bad(node, mark, f"wrong arguments; use {_KERNEL_USAGE}")
    try:
        parse_range(mark.args[0])
    except ValueError as err:  # it says the form
        problem = str(err)
    else:
        return mark.args[0]
    _bad(node, mark, problem)


def _kernel(item: pytest.Item, mark: pytest.Mark, info: TargetInfo) -> str | None:
    from vfio_hil._kernel_range import in_range

    text = _kernel_range(item, mark)
    if info.kernel is not None and in_range(info.kernel.version, text):
        return None
    kernel = info.kernel.name if info.kernel else "unknown"
    return f"{info.target.spec} runs kernel {kernel}, outside {text}"
