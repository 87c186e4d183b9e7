"""Kernel version ranges such as ``">=6.5"`` or ``">=6.1,<6.9"``."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable

__all__ = ["in_range", "parse_range"]

_OPS: dict[str, Callable[[tuple[int, ...], tuple[int, ...]], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    ">": operator.gt,
    "<": operator.lt,
}
_TERM = re.compile(r"\s*(>=|<=|==|>|<)\s*(\d+(?:\.\d+){0,2})\s*$")

Range = list[tuple[Callable[[tuple[int, ...], tuple[int, ...]], bool], tuple[int, ...]]]


def parse_range(text: str) -> Range:
    """``">=6.5,<7"`` -> comparisons; ValueError saying the form if malformed."""
    terms: Range = []
    for part in text.split(","):
        match = _TERM.match(part)
        if match is None:
            raise ValueError(
                f"bad kernel range {text!r}: use comparisons like '>=6.5' or '>=6.1,<6.9'"
            )
        version = tuple(int(n) for n in match[2].split("."))
        terms.append((_OPS[match[1]], version))
    return terms


def in_range(version: tuple[int, int, int], text: str) -> bool:
    """Does ``version`` satisfy every comparison of ``text``?

    A comparison names as many parts as it cares about: ``<6.5`` compares
    major and minor only, so 6.5.3 is not ``<6.5``.
    """
    return all(op(version[: len(bound)], bound) for op, bound in parse_range(text))
