"""The kselftest harness (tools/testing/selftests/kselftest_harness.h) from outside.

A harness binary lists its tests with ``-l`` (on stderr: a table of fixture,
variant and test columns, ``%-20s %-25s %s``, in which a fixture's variants
and tests are two independent columns: its cases are their product) and runs
one with ``-r FIXTURE.VARIANT.TEST`` (``FIXTURE.TEST`` without variants),
reporting in TAP: ``ok N name``, ``ok N name # SKIP reason``, ``not ok N
name``; a binary that gives up before its harness runs prints ``1..0 # SKIP
reason`` (or nothing) and exits 4 (KSFT_SKIP) or 1.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "KSFT_SKIP",
    "Case",
    "Outcome",
    "list_cases",
    "parse_listing",
    "parse_result",
    "run_case",
]

KSFT_SKIP = 4
LIST_TIMEOUT_S = 30.0
_WIDTHS = (20, 25)  # the listing's fixture and variant columns


@dataclass(frozen=True)
class Case:
    fixture: str
    variant: str  # "" for a fixture without variants
    test: str

    @property
    def name(self) -> str:
        """The harness's own name, what ``-r`` takes and TAP reports."""
        return ".".join(p for p in (self.fixture, self.variant, self.test) if p)


@dataclass(frozen=True)
class Outcome:
    status: str  # "passed", "skipped", "failed", "xfail"
    reason: str  # the skip reason, or what failed
    output: str  # everything the binary printed


def _fields(row: str) -> list[str]:
    """The three columns of one listing row; a long name pushes the next column right."""
    out, pos = [], 0
    for width in _WIDTHS:
        if pos >= len(row) or row[pos] == " ":
            out.append("")
            pos += width + 1
            continue
        token = row[pos:].split(" ", 1)[0]
        out.append(token)
        pos += max(width, len(token)) + 1
    out.append(row[pos:].strip())
    return out


def parse_listing(text: str) -> list[Case]:
    """The cases of a ``-l`` listing, in the harness's order."""
    cases: list[Case] = []
    blocks: list[tuple[str, list[str], list[str]]] = []
    started = False
    for row in text.splitlines():
        if row.startswith("# FIXTURE"):
            started = True  # what comes before is the binary's own output
            continue
        if not started or not row.strip() or set(row) == {"-"}:
            continue
        fixture, variant, test = _fields(row)
        if fixture:
            blocks.append((fixture, [], []))
        if not blocks:
            continue
        if variant:
            blocks[-1][1].append(variant)
        if test:
            blocks[-1][2].append(test)
    for fixture, variants, tests in blocks:
        for variant in variants or [""]:
            cases += [Case(fixture, variant, t) for t in tests]
    return cases


_RESULT = re.compile(r"^(not )?ok \d+ (\S+)(?:\s+#\s*(SKIP|XFAIL|XPASS|TODO)\b\s*(.*))?$")
_PLAN_SKIP = re.compile(r"^1\.\.0\s+#\s*SKIP\s*(.*)$")


def parse_result(output: str, name: str | None, exit_code: int | None) -> Outcome:
    """What one run of ``name`` (None: the whole binary) ended in, from its TAP output."""
    for line in output.splitlines():
        m = _RESULT.match(line.strip())
        if m is None or (name is not None and m.group(2) != name):
            continue
        failed, directive, reason = bool(m.group(1)), m.group(3), (m.group(4) or "").strip()
        if directive == "SKIP":
            return Outcome("skipped", reason or "skipped (no reason given)", output)
        if directive == "XFAIL":
            return Outcome("xfail", reason, output)
        if failed:
            return Outcome("failed", f"{m.group(2)}: not ok", output)
        return Outcome("passed", "", output)
    for line in output.splitlines():
        m = _PLAN_SKIP.match(line.strip())
        if m:
            return Outcome("skipped", m.group(1).strip() or "skipped (no reason given)", output)
    if exit_code == KSFT_SKIP:
        last = next((ln.strip() for ln in reversed(output.splitlines()) if ln.strip()), "")
        return Outcome("skipped", last or "the binary skipped (exit 4)", output)
    what = "timed out" if exit_code is None else f"exited {exit_code}"
    return Outcome("failed", f"no TAP result for {name or 'the binary'}: it {what}", output)


def _run(argv: Sequence[str], env: Mapping[str, str], timeout: float) -> tuple[str, int | None]:
    """(stdout and stderr interleaved, exit code or None on timeout)."""
    try:
        proc = subprocess.run(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            timeout=timeout,
            env={**os.environ, **env},
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        out = (
            err.stdout
            if isinstance(err.stdout, str)
            else (err.stdout or b"").decode(errors="replace")
        )
        return out + f"\n[vfio-hil: killed after {timeout:.0f} s]\n", None
    return proc.stdout, proc.returncode


def list_cases(
    binary: Path, bdf: str, env: Mapping[str, str] | None = None, timeout: float = LIST_TIMEOUT_S
) -> tuple[list[Case], Outcome]:
    """(the binary's cases, how listing ended): no case means the binary gave up
    before its harness ran (the outcome says why)."""
    output, code = _run([str(binary), "-l", bdf], env or {}, timeout)
    cases = parse_listing(output)
    return cases, parse_result(output, None, code) if not cases else Outcome("passed", "", output)


def run_case(
    binary: Path, case: Case | None, bdf: str, env: Mapping[str, str], timeout: float
) -> Outcome:
    """Run one case (None: the whole binary) on ``bdf``; never raises for the test's sake."""
    argv = [str(binary), *(["-r", case.name] if case else []), bdf]
    output, code = _run(argv, env, timeout)
    return parse_result(output, case.name if case else None, code)
