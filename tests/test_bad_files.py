"""Bad input files, from the user's side: each is refused at once, in one line.

``vfio-hil replay`` and pytest run as a user would run them, in a subprocess
with a time limit and an address-space limit, so a read that blocks or grows
(``replay /dev/zero`` grew to 7 GB; ``replay`` on a FIFO blocked forever; an
alias bomb took 44 s and 2.25 GB to collect) fails the test instead of
hanging it or swapping the machine.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from vfio_hil._scenario import ScenarioSyntaxError, load_scenario

TIMEOUT_S = 30  # the CLI starts in about half a second
ADDRESS_SPACE = 512 << 20  # the CLI and pytest run in under 256 MiB

# Billion laughs: nine lines that expand to 10**9 strings.
BOMB = """\
vfio-hil: scenario/1
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""
A_STEP = "steps:\n  - reset\n"


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        preexec_fn=_limited,
        cwd=cwd,
        check=False,
    )


def _write(name: str, content: str | bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    return make


def _tagged(field: str) -> Callable[[Path], Path]:
    return _write(
        "tag.yaml",
        f"vfio-hil: scenario/1\nname: x\nsteps:\n  - trigger: {{index: MSIX, {field}}}\n",
    )


def _fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "pipe.yaml")
    return tmp / "pipe.yaml"


def _directory(tmp: Path) -> Path:
    (tmp / "dir.yaml").mkdir()
    return tmp / "dir.yaml"


def _link_to_dev_zero(tmp: Path) -> Path:
    (tmp / "zero.yaml").symlink_to("/dev/zero")
    return tmp / "zero.yaml"


# (how to make the bad input, words the one line must hold besides the path)
BAD_INPUTS = {
    "dev_zero": (lambda _: Path("/dev/zero"), ["regular file"]),
    "symlink_to_dev_zero": (_link_to_dev_zero, ["regular file"]),
    "fifo": (_fifo, ["FIFO", "regular file"]),
    "directory": (_directory, ["directory", "regular file"]),
    "missing": (lambda tmp: tmp / "nowhere.yaml", ["no such file"]),
    "alias_bomb": (_write("bomb.yaml", BOMB), ["alias"]),
    "self_alias": (_write("loop.yaml", f"vfio-hil: scenario/1\nx: &x [*x]\n{A_STEP}"), ["alias"]),
    "deep_nesting": (
        _write("deep.yaml", "vfio-hil: scenario/1\nx: " + "[" * 50_000 + "]" * 50_000 + "\n"),
        ["deep"],
    ),
    "too_big": (
        _write("big.yaml", "vfio-hil: scenario/1\n" + "# padding\n" * 200_000 + A_STEP),
        ["1 MiB"],
    ),
    "not_utf8": (
        _write("latin1.yaml", "vfio-hil: scenario/1\nname: caf\xe9\n".encode("latin-1")),
        ["UTF-8"],
    ),
    "no_marker": (
        _write("cloudbuild.yaml", "steps:\n  - name: gcr.io/cloud-builders/docker\n"),
        ["vfio-hil: scenario/1"],
    ),
    "wrong_marker": (_write("next.yaml", f"vfio-hil: scenario/9\n{A_STEP}"), [":1:", "scenario/1"]),
    # An explicit YAML tag on a value it cannot parse (was a ValueError,
    # KeyError or AttributeError traceback from PyYAML's constructors).
    "int_tag": (_tagged("count: !!int abc"), [":4:", "'abc' is not a valid !!int"]),
    "float_tag": (_tagged("count: !!float abc"), [":4:", "'abc' is not a valid !!float"]),
    "bool_tag": (_tagged("count: !!bool maybe"), [":4:", "'maybe' is not a valid !!bool"]),
    "timestamp_tag": (_tagged("count: !!timestamp x"), [":4:", "'x' is not a valid !!timestamp"]),
    "sequence_key": (
        _write("key.yaml", "vfio-hil: scenario/1\nsteps: [reset]\n? [a, b]\n: 1\n"),
        [":3:", "keys must be strings, not a sequence"],
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_replay_refuses_a_bad_file_in_one_line_naming_it(case: str, tmp_path: Path) -> None:
    make, words = BAD_INPUTS[case]
    path = make(tmp_path)
    done = run("-m", "vfio_hil", "replay", str(path))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, done.stderr
    assert str(path) in lines[0]
    for word in words:
        assert word in lines[0]
    assert done.stdout == ""


def test_the_alias_bomb_fails_fast_in_process(tmp_path: Path) -> None:
    path = _write("bomb.yaml", BOMB)(tmp_path)
    started = time.monotonic()
    with pytest.raises(ScenarioSyntaxError, match="alias"):
        load_scenario(path)
    assert time.monotonic() - started < 2.0


def test_an_alias_within_the_budget_still_works(tmp_path: Path) -> None:
    text = (
        "vfio-hil: scenario/1\neventfds: 1\nsteps:\n  - enable: {index: MSIX, fds: [e0]}\n"
        "  - trigger: {index: MSIX}\n    expect: &fired {signals: {e0: 1}}\n"
        "  - trigger: {index: MSIX}\n    expect: *fired\n"
    )
    scenario = load_scenario(_write("reuse.yaml", text)(tmp_path))
    assert scenario.steps[1].expect == scenario.steps[2].expect
    assert scenario.steps[1].expect != scenario.steps[0].expect


@pytest.mark.parametrize("case", ["alias_bomb", "too_big", "wrong_marker"])
def test_a_bad_marked_file_is_one_collection_error_naming_it(case: str, tmp_path: Path) -> None:
    make, words = BAD_INPUTS[case]
    path = make(tmp_path)
    (tmp_path / "test_fine.py").write_text("def test_fine():\n    pass\n")
    done = run("-m", "pytest", "-p", "no:cacheprovider", cwd=tmp_path)
    out = done.stdout
    assert done.returncode == pytest.ExitCode.INTERRUPTED, out
    assert f"ERROR collecting {path.name}" in out
    [line] = [line for line in out.splitlines() if line.startswith(f"{path.name}:")]
    for word in words:
        assert word in line
    assert "Traceback" not in out
