"""The plugin's markers and how each rules a target in or out.

A marker with a bad argument fails the collection of its test with one line
that names the test, the marker and what it accepts: no traceback from here.
"""

from __future__ import annotations

import inspect
from typing import NoReturn

import pytest

from vfio_hil._fuzz.profiles import register_profiles
from vfio_hil._needs import Needs
from vfio_hil._plugin.targets import TargetInfo

__all__ = ["needs_of", "register", "unmet"]

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
        for mark in node.iter_markers("vfio_stimulus"):
            _no_args(node, mark)


def register(config: pytest.Config) -> None:
    for line in LINES:
        config.addinivalue_line("markers", line)
    config.pluginmanager.register(_Check(), "vfio_hil-marker-check")


def needs_of(item: pytest.Item) -> Needs:
    """The item's markers as one ``Needs`` (a bad argument fails the item)."""
    needs = Needs()
    for mark in item.iter_markers("vfio_irq"):
        index, min_count, flags = _irq_args(item, mark)
        needs &= Needs(counts=((index, min_count),), flags=((index, flags),) if flags else ())
    for mark in item.iter_markers("vfio_stimulus"):
        _no_args(item, mark)
        needs &= Needs(stimulus=True)
    for mark in item.iter_markers("vfio_kernel"):
        needs &= Needs(kernels=(_kernel_range(item, mark),))
    return needs


def unmet(item: pytest.Item, info: TargetInfo) -> str | None:
    """Why ``info``'s target cannot run ``item`` (None: it can)."""
    assert info.facts is not None  # probe() sets them for every target that opened
    return needs_of(item).unmet(info.facts)


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


def _no_args(node: pytest.Item, mark: pytest.Mark) -> None:
    # vfio_stimulus(False) read as "needs a stimulus" would say the opposite.
    if mark.args or mark.kwargs:
        _bad(node, mark, "takes no arguments; use @pytest.mark.vfio_stimulus")


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
