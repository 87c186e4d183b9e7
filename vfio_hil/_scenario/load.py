"""Read a scenario file: top-level keys, then each step; errors name file:line."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

from vfio_hil._scenario.nodes import Node, SchemaError, check_keys, parse_yaml
from vfio_hil._scenario.requires import Requires, parse_requires
from vfio_hil._scenario.steps import ScenarioStep, parse_step

__all__ = ["MAX_EVENTFDS", "Scenario", "ScenarioSyntaxError", "load_scenario", "parse_scenario"]

MAX_EVENTFDS = 256
_TOP_KEYS = ("name", "requires", "eventfds", "steps")


class ScenarioSyntaxError(Exception):
    """A malformed scenario file: where, and what is wrong."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Scenario:
    path: Path
    name: str
    requires: Requires
    eventfds: int
    steps: tuple[ScenarioStep, ...]
    line: int  # the line of 'steps:'


def load_scenario(path: Path, shown_as: str | None = None) -> Scenario:
    """The scenario in ``path``; errors name it as ``shown_as`` (default: the path)."""
    shown = shown_as or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ScenarioSyntaxError(shown, 1, f"cannot read the file: {err}") from None
    return parse_scenario(text, path, shown)


def parse_scenario(text: str, path: Path, shown_as: str | None = None) -> Scenario:
    try:
        return _scenario(parse_yaml(text), text.splitlines(), path)
    except SchemaError as err:
        raise ScenarioSyntaxError(shown_as or str(path), err.line, err.message) from None


def _scenario(root: Node, lines: list[str], path: Path) -> Scenario:
    if not isinstance(root.value, dict):
        raise root.fail("a scenario is a mapping with 'steps:' (and name, requires, eventfds)")
    entries = check_keys(root, "the scenario", _TOP_KEYS, required=("steps",))
    name = entries["name"].string("name") if "name" in entries else path.stem
    slots = entries["eventfds"].integer("eventfds", 0, MAX_EVENTFDS) if "eventfds" in entries else 0
    requires = parse_requires(entries.get("requires"))
    items = entries["steps"].sequence("steps")
    if not items:
        raise entries["steps"].fail("steps is empty: give at least one step")
    steps = tuple(
        parse_step(item, number, slots, _source(lines, item))
        for number, item in enumerate(items, 1)
    )
    return Scenario(path, name, requires, slots, steps, root.key_lines["steps"])


def _source(lines: list[str], node: Node) -> str:
    """The step as written, for failure reports."""
    return textwrap.dedent("\n".join(lines[node.line - 1 : node.end_line])).rstrip()
