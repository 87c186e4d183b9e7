"""Claims the README and docs/ make that a reader acts on, checked against the tool.

* every ``vfio-hil`` command line they show names subcommands and options that
  ``vfio-hil ... --help`` lists, and every ``--vfio-*`` option is in
  ``pytest --help``;
* every ``VFIO_HIL_*`` variable they document is used by the code;
* every concrete ``sim:`` target (and ``--sim``/``--vfio-sim``/``VFIO_HIL_SIM``
  value) they show is one vfio-hil accepts;
* JUnit XML carries ``vfio_device``, ``vfio_kernel`` and ``vfio_iommu`` on skipped results too.
"""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

import pytest

from vfio_hil._errors import VfioHilError
from vfio_hil._targets import parse_target

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CODE_DIRS = [ROOT / "vfio_hil", ROOT / "tests", ROOT / ".ci"]


def _code_texts(page: Path) -> list[str]:
    """The page's code: inline spans, fenced blocks and indented blocks, with
    continuation lines (a trailing backslash, or a line starting with ``[``)
    joined to the line before."""
    text = page.read_text()
    found = re.findall(r"(?<!`)`([^`\n]+)`(?!`)", text)
    lines: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if not (fenced or line.startswith("    ")):
            continue
        stripped = line.strip()
        if lines and (lines[-1].endswith("\\") or stripped.startswith(("[", "--"))):
            lines[-1] = lines[-1].rstrip("\\") + " " + stripped
        else:
            lines.append(stripped)
    return found + lines


# A command starts a code span or line, or follows a prompt, `&&` or `;`.
COMMAND = re.compile(r"(?:^|\$ |&& |; )(?:[\w./]*/)?(?:vfio-hil|python -m vfio_hil) (?=[a-z(])(.*)")


def _documented_commands() -> list[tuple[str, str]]:
    commands = []
    for page in PAGES:
        for code in _code_texts(page):
            for match in COMMAND.finditer(code):
                commands.append((page.name, match[1]))
    return commands


@cache
def _help(path: tuple[str, ...]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "vfio_hil", *path, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"vfio-hil {' '.join(path)} --help: {done.stderr}"
    return done.stdout


def _subcommands(path: tuple[str, ...]) -> set[str]:
    usage = _help(path).split("\n\n")[0]
    choice = re.search(r"\{([\w,-]+)\}", usage)
    return set(choice[1].split(",")) if choice else set()


def test_the_docs_show_vfio_hil_commands() -> None:
    pages = {page for page, _ in _documented_commands()}
    assert {"README.md", "cli.md", "fuzzing.md", "lab.md"} <= pages


@pytest.mark.parametrize(("page", "command"), _documented_commands())
def test_every_documented_command_and_option_exists(page: str, command: str) -> None:
    words = command.split()
    path: tuple[str, ...] = ()
    while words and words[0] in _subcommands(path):
        path, words = (*path, words[0]), words[1:]
    assert path, f"{page}: `vfio-hil {command}` names no subcommand of `vfio-hil --help`"
    options_part = re.split(r"(?:^|[\s\[])--(?:\s|\]|$)", " ".join(words))[0]
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", options_part))
    listed = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", _help(path)))
    missing = named - listed
    assert not missing, f"{page}: `vfio-hil {command}`: {sorted(missing)} not in --help"


def test_every_documented_pytest_option_exists(pytester: pytest.Pytester) -> None:
    documented = {
        option
        for page in PAGES
        for option in re.findall(r"(?<![\w-])--vfio-[a-z-]+", page.read_text())
    }
    assert "--vfio-bind" in documented  # the page for the plugin names all four
    shown = pytester.runpytest("--help").stdout.str()
    missing = {o for o in documented if o not in shown}
    assert not missing, f"documented but not in pytest --help: {sorted(missing)}"


def _env_vars() -> set[str]:
    # vars.VFIO_HIL_DEVICE in ci.md is a GitHub repository variable, not ours.
    return {
        name
        for page in PAGES
        for name in re.findall(r"(?<![\w.])VFIO_HIL_[A-Z0-9_]+", page.read_text())
    }


def test_every_documented_environment_variable_is_used_by_the_code() -> None:
    sources = "\n".join(
        path.read_text(errors="replace")
        for directory in CODE_DIRS
        for path in directory.rglob("*")
        if path.is_file() and path.suffix in (".py", ".sh", "") and "__pycache__" not in path.parts
    )
    documented = _env_vars()
    assert {"VFIO_HIL_SIM", "VFIO_HIL_LOCK_DIR", "VFIO_HIL_DEVICES"} <= documented
    unused = {n for n in documented if not re.search(rf"\b{n}\b", sources)}
    assert not unused, f"documented, but no code mentions them: {sorted(unused)}"


SIM_SPEC = r"[a-z][a-z0-9_]*(?::\d+)?(?:@\d+(?:\.\d+)*)?"


def _sim_specs() -> list[tuple[str, str]]:
    specs = []
    for page in PAGES:
        text = page.read_text()
        found = re.findall(rf"\bsim:({SIM_SPEC})", text)
        found += re.findall(rf"--(?:vfio-)?sim[ =]({SIM_SPEC})", text)
        for listed in re.findall(r"VFIO_HIL_SIM=([\w:@.,]+)", text):
            found += listed.split(",")
        specs += [(page.name, spec) for spec in found]
    return specs


def test_the_docs_show_sim_targets() -> None:
    shown = {spec for _, spec in _sim_specs()}
    assert {"edu", "virtio_msix:8@6.12", "edu@6.1"} <= shown


@pytest.mark.parametrize(("page", "spec"), _sim_specs())
def test_every_documented_sim_target_is_accepted(page: str, spec: str) -> None:
    try:
        parse_target(f"sim:{spec}")
    except VfioHilError as err:
        pytest.fail(f"{page} shows sim:{spec}, which vfio-hil refuses: {err}")


def test_junit_records_device_and_kernel_on_passed_and_skipped_results(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("VFIO_HIL_DEVICES", "VFIO_HIL_SIM"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.vfio_stimulus  # edu raises interrupts on demand, virtio does not
        def test_x(vfio_device):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--junitxml=out.xml")
    result.assert_outcomes(passed=1, skipped=1)
    cases = ET.parse(pytester.path / "out.xml").getroot().iter("testcase")
    seen = {}
    for case in cases:
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        seen[case.get("name")] = (case.find("skipped") is not None, props)
    # the vendor:device pairs are QEMU's edu and a modern virtio-rng function
    assert seen == {
        "test_x[sim:edu@6.12]": (
            False,
            {"vfio_device": "sim:edu@6.12 [1234:11e8]", "vfio_kernel": "6.12", "vfio_iommu": "-"},
        ),
        "test_x[sim:virtio_msix@6.12]": (
            True,
            {
                "vfio_device": "sim:virtio_msix@6.12 [1af4:1044]",
                "vfio_kernel": "6.12",
                "vfio_iommu": "-",
            },
        ),
    }
