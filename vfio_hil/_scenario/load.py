"""Read a scenario file: its marker, top-level keys, then each step.

Every error names file:line.  The file is read through ``vfio_hil._files``
(a regular file of at most 1 MiB, YAML with bounded aliases), so a FIFO,
``/dev/zero`` or an alias bomb is refused like any other malformed file.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

from vfio_hil._files import BadFileError, check_yaml, read_text
from vfio_hil._scenario.discover import MARKER, MARKER_KEY, MARKER_LINE
from vfio_hil._scenario.nodes import Node, SchemaError, check_keys, describe, parse_yaml
from vfio_hil._scenario.requires import Requires, parse_requires
from vfio_hil._scenario.steps import ScenarioStep, parse_step

__all__ = ["MAX_EVENTFDS", "Scenario", "ScenarioSyntaxError", "load_scenario", "parse_scenario"]

MAX_EVENTFDS = 256
_TOP_KEYS = (MARKER_KEY, "name", "requires", "eventfds", "steps")


class ScenarioSyntaxError(BadFileError):
    """A malformed scenario file: where (line 0: the whole file), and what is wrong."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(path, message, line)


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
        text = read_text(path, shown, "a scenario file")
    except BadFileError as err:
        raise ScenarioSyntaxError(shown, err.line, err.problem) from None
    return parse_scenario(text, path, shown, marked=True)


def parse_scenario(
    text: str, path: Path, shown_as: str | None = None, *, marked: bool = False
) -> Scenario:
    """The scenario in ``text``; ``marked``: it must carry the marker, as a file must."""
    shown = shown_as or str(path)
    try:
        check_yaml(text, shown)
        return _scenario(parse_yaml(text), text.splitlines(), path, marked)
    except BadFileError as err:
        raise ScenarioSyntaxError(shown, err.line, err.problem) from None
    except SchemaError as err:
        raise ScenarioSyntaxError(shown, err.line, err.message) from None


def _check_marker(root: Node, marked: bool) -> None:
    entries = root.value if isinstance(root.value, dict) else {}
    marker = entries.get(MARKER_KEY)
    if marker is None:
        if marked:
            raise root.fail(f"not marked as a vfio-hil scenario: add '{MARKER_LINE}' as line 1")
        return
    if marker.value != MARKER:
        raise marker.fail(
            f"{MARKER_KEY} must be {MARKER!r}, the scenario format this vfio-hil reads,"
            f" not {describe(marker)}"
        )


def _scenario(root: Node, lines: list[str], path: Path, marked: bool) -> Scenario:
    _check_marker(root, marked)  # before the keys: a file that is no scenario says so
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
