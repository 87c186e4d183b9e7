"""YAML read into a tree that remembers line numbers, and strict field readers.

``parse_yaml`` composes the document with PyYAML's safe loader and keeps each
node's line, so every schema error can name ``file:line``.  The ``Node``
readers (``mapping``, ``integer``, ...) raise ``SchemaError`` with the line of
the offending node and, for misspelt names, a did-you-mean suggestion.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

import yaml

__all__ = [
    "Node",
    "SchemaError",
    "check_keys",
    "did_you_mean",
    "parse_yaml",
]

Scalar = str | int | float | bool | None


class SchemaError(Exception):
    """A malformed scenario: ``line`` (1-based) and what is wrong there."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Node:
    """A YAML value and the line it starts on; mappings also keep key lines."""

    value: Scalar | list[Node] | dict[str, Node]
    line: int
    end_line: int
    key_lines: dict[str, int] = field(default_factory=dict)

    def fail(self, message: str) -> SchemaError:
        return SchemaError(self.line, message)

    def mapping(self, what: str) -> dict[str, Node]:
        if not isinstance(self.value, dict):
            raise self.fail(f"{what} must be a mapping, not {describe(self)}")
        return self.value

    def sequence(self, what: str) -> list[Node]:
        if not isinstance(self.value, list):
            raise self.fail(f"{what} must be a list, not {describe(self)}")
        return self.value

    def integer(self, what: str, low: int = 0, high: int = 0xFFFFFFFF) -> int:
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{what} must be an integer, not {describe(self)}")
        if not low <= value <= high:
            raise self.fail(f"{what} must be in {low}..{high:#x}, not {value}")
        return value

    def boolean(self, what: str) -> bool:
        if not isinstance(self.value, bool):
            raise self.fail(f"{what} must be true or false, not {describe(self)}")
        return self.value

    def string(self, what: str) -> str:
        if not isinstance(self.value, str):
            raise self.fail(f"{what} must be a string, not {describe(self)}")
        return self.value


def describe(node: Node) -> str:
    """How a value reads in an error message: ``the integer 3``, ``a list``."""
    value = node.value
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"the integer {value}"
    if isinstance(value, float):
        return f"the number {value}"
    return f"the string {value!r}"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when ``word`` is close to one of ``choices``."""
    options = list(choices)
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not close:
        close = [c for c in options if c.lower() == word.lower()]
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(
    node: Node, what: str, allowed: Iterable[str], required: Iterable[str] = ()
) -> dict[str, Node]:
    """The mapping, after refusing unknown keys and reporting missing ones."""
    entries = node.mapping(what)
    known = list(allowed)
    for key in entries:
        if key not in known:
            hint = did_you_mean(key, known)
            raise SchemaError(
                node.key_lines[key],
                f"unknown key {key!r} in {what}{hint}; allowed: {', '.join(known)}",
            )
    for key in required:
        if key not in entries:
            raise node.fail(f"{what} is missing the required key {key!r}")
    return entries


def parse_yaml(text: str) -> Node:
    """The single YAML document in ``text``, as a ``Node`` tree."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else 1
        context = ""
        if err.context and err.context_mark is not None:
            context = f" ({err.context} on line {err.context_mark.line + 1})"
        raise SchemaError(line, f"not valid YAML: {err.problem or err}{context}") from None
    except yaml.YAMLError as err:
        raise SchemaError(1, f"not valid YAML: {err}") from None
    if root is None:
        raise SchemaError(1, "the file is empty: a scenario is a mapping with 'steps:'")
    return _convert(root, yaml.SafeLoader(""))


def _convert(node: yaml.Node, loader: yaml.SafeLoader) -> Node:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        entries: dict[str, Node] = {}
        key_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                kind = "a mapping" if isinstance(key_node, yaml.MappingNode) else "a sequence"
                raise SchemaError(key_line, f"keys must be strings, not {kind}")
            key = _convert(key_node, loader).value
            if not isinstance(key, str):
                raise SchemaError(key_line, f"keys must be strings, not {key!r}")
            if key in entries:
                raise SchemaError(
                    key_line, f"duplicate key {key!r} (first on line {key_lines[key]})"
                )
            entries[key] = _convert(value_node, loader)
            key_lines[key] = key_line
        return Node(entries, line, _end_line(node, entries.values()), key_lines)
    if isinstance(node, yaml.SequenceNode):
        items = [_convert(item, loader) for item in node.value]
        return Node(items, line, _end_line(node, items))
    try:
        value = loader.construct_object(node)
    except yaml.constructor.ConstructorError as err:
        raise SchemaError(line, f"unsupported YAML value: {err.problem}") from None
    # PyYAML's scalar constructors raise these for a value their tag cannot
    # parse ("!!int abc", "!!bool maybe", "!!timestamp notadate").
    except (ValueError, TypeError, OverflowError, KeyError, AttributeError):
        tag = node.tag.rsplit(":", 1)[-1]
        raise SchemaError(line, f"{node.value!r} is not a valid !!{tag}") from None
    if not isinstance(value, str | int | float | bool | None):
        raise SchemaError(line, f"unsupported YAML value {value!r}: use numbers and strings")
    return Node(value, line, _end_line(node, ()))


def _end_line(node: yaml.Node, children: Iterable[Node]) -> int:
    """The last line with the node's content (1-based, inclusive).

    A block collection ends where its next sibling starts, so its last line
    is its last child's; a scalar or flow collection ends at its end mark.
    """
    start = node.start_mark.line + 1
    if isinstance(node, yaml.CollectionNode) and not node.flow_style:
        return max((child.end_line for child in children), default=start)
    mark = node.end_mark
    return max(start, mark.line if mark.column == 0 else mark.line + 1)
