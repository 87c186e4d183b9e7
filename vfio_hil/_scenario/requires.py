"""``requires:``: what a target must have for a scenario to run on it.

Keys: ``irq`` (an index name or a list) with ``min_count`` (default 1),
``msi`` / ``msix`` (minimum vector counts), ``counts`` (exact GET_IRQ_INFO
counts per index name, as a counterexample needs), ``stimulus``, ``pcie``,
``dyn_msix``, ``reset``, ``multi_msi`` (true or false: MSI with more than
one vector, which x86 gives only with interrupt remapping) and ``kernel``
(a range).  A target
that falls short is skipped with the reason.
"""

from __future__ import annotations

from vfio_hil._irq import IrqIndex
from vfio_hil._needs import Needs
from vfio_hil._scenario.kernels import KernelRange
from vfio_hil._scenario.nodes import Node, SchemaError, check_keys, did_you_mean

__all__ = ["Requires", "parse_requires"]

_KEYS = (
    *("irq", "min_count", "msi", "msix", "counts"),
    *("stimulus", "pcie", "dyn_msix", "reset", "kernel", "multi_msi"),
)
_INDEX_NAMES = [i.name for i in IrqIndex]
_MAX_VECTORS = 2048


# A scenario's requires: is a Needs, checked as the plugin's markers are.
Requires = Needs


def _index_names(node: Node) -> list[int]:
    items = node.value if isinstance(node.value, list) else [node]
    indexes = []
    for item in items:
        if not isinstance(item.value, str) or item.value not in _INDEX_NAMES:
            hint = did_you_mean(item.value, _INDEX_NAMES) if isinstance(item.value, str) else ""
            raise item.fail(
                f"bad index {item.value!r} in requires.irq{hint}: "
                f"use one of {', '.join(_INDEX_NAMES)}"
            )
        indexes.append(int(IrqIndex[item.value]))
    return indexes


def parse_requires(node: Node | None) -> Requires:
    if node is None:
        return Needs()
    entries = check_keys(node, "requires", _KEYS)
    counts: dict[int, int] = {}
    if "min_count" in entries and "irq" not in entries:
        raise SchemaError(node.key_lines["min_count"], "min_count applies to irq: give irq too")
    if "irq" in entries:
        least = 1
        if "min_count" in entries:
            least = entries["min_count"].integer("min_count", 1, _MAX_VECTORS)
        counts = dict.fromkeys(_index_names(entries["irq"]), least)
    for key, index in (("msi", IrqIndex.MSI), ("msix", IrqIndex.MSIX)):
        if key in entries:
            least = entries[key].integer(key, 1, _MAX_VECTORS)
            counts[int(index)] = max(least, counts.get(int(index), 0))
    exact = _exact_counts(entries["counts"]) if "counts" in entries else {}
    kernel = None
    if "kernel" in entries:
        text = entries["kernel"].string("kernel")
        try:
            kernel = KernelRange.parse(text)
        except ValueError as err:
            raise entries["kernel"].fail(str(err)) from None

    def flag(key: str) -> bool | None:
        return entries[key].boolean(key) if key in entries else None

    return Needs(
        counts=tuple(sorted(counts.items())),
        exact=tuple(sorted(exact.items())),
        stimulus=flag("stimulus"),
        pcie=flag("pcie"),
        dyn_msix=flag("dyn_msix"),
        reset=flag("reset"),
        kernels=(kernel.text,) if kernel else (),
        multi_msi=flag("multi_msi"),
    )


def _exact_counts(node: Node) -> dict[int, int]:
    exact = {}
    for key, value in node.mapping("requires.counts").items():
        if key not in _INDEX_NAMES:
            raise SchemaError(
                node.key_lines[key],
                f"bad index {key!r} in requires.counts{did_you_mean(key, _INDEX_NAMES)}: "
                f"use one of {', '.join(_INDEX_NAMES)}",
            )
        exact[int(IrqIndex[key])] = value.integer(f"requires.counts.{key}", 0, _MAX_VECTORS)
    return exact
