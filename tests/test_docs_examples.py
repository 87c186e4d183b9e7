"""Every ```python block in the README and docs/ runs as written.

A block that needs a real device or boots the lab runs where those exist
(``tests/guest``, the lab itself); here it is skipped, saying so.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = [
    pytest.param(code, id=f"{page.name}:{n}")
    for page in PAGES
    for n, code in enumerate(BLOCK.findall(page.read_text()), 1)
]


FILE = re.compile(r"\A# file: (test_\w+\.py)\n")
pytest_plugins = ["pytester"]


@pytest.mark.parametrize("code", EXAMPLES)
def test_doc_example_runs(code: str, request: pytest.FixtureRequest) -> None:
    named = FILE.match(code)
    if named:  # a test file for the plugin: run it with pytest, as a reader would
        pytester = request.getfixturevalue("pytester")
        pytester.makepyfile(**{named[1][:-3]: code})
        result = pytester.runpytest("-p", "no:cacheprovider", "--strict-markers")
        outcomes = result.parseoutcomes()
        assert result.ret == 0, result.stdout.str()
        assert outcomes.get("passed", 0) > 0, result.stdout.str()
        return
    if "open_device(" in code:
        pytest.skip("the example opens a real device: it runs where one is bound to vfio-pci")
    if "bind_to_vfio(" in code or "restore_stale(" in code:
        pytest.skip("the example rebinds host devices: tests/guest/test_bind_guest.py runs it")
    if "run_lab(" in code:
        pytest.skip("the example boots the lab: tests/lab runs the same call")
    exec(compile(code, "<doc example>", "exec"), {"__name__": "doc_example"})
