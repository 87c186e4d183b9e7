"""The package imports only down: no two parts of vfio_hil import each other.

A cycle between parts (``vfio_hil._fuzz`` and ``vfio_hil.stateful``, say)
makes the import order decide what works, and makes the lazy plugin import
pull everything in.  Module-level imports count; imports inside functions
(lazy, on purpose) and under ``TYPE_CHECKING`` do not.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import vfio_hil

ROOT = Path(vfio_hil.__file__).parent


def _part(module: str) -> str:
    """``vfio_hil._fuzz.context`` -> ``vfio_hil._fuzz``; top-level modules are parts."""
    return ".".join(module.split(".")[:2])


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node) if not isinstance(node, ast.FunctionDef | ast.ClassDef) else []:
            if isinstance(sub, ast.ImportFrom) and sub.module and sub.level == 0:
                found.add(sub.module)
            elif isinstance(sub, ast.Import):
                found.update(alias.name for alias in sub.names)
    return {m for m in found if m.startswith("vfio_hil")}


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        if "suite" in path.relative_to(ROOT).parts:
            continue  # the conformance suite is test code run by pytest, at the top
        part = _part(_module_name(path))
        targets = {_part(m) for m in _top_level_imports(path)} - {part, "vfio_hil"}
        graph.setdefault(part, set()).update(targets)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_two_parts_of_the_package_import_each_other() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_loading_the_plugin_imports_no_device_or_model_stack() -> None:
    code = (
        "import sys, vfio_hil._plugin.plugin\n"
        "heavy = ('vfio_hil._host', 'vfio_hil._sim', 'vfio_hil._model.core',"
        " 'vfio_hil._lockstep')\n"
        "print([m for m in sys.modules if m.startswith(heavy)])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
