"""Scan a guest's console stream for kernel failures and lab markers.

The console carries the kernel log (``loglevel=6``, ``printk.time=1``)
interleaved with the guest command's output, sometimes on the same line.
Only text after a printk timestamp counts as kernel output, so a test that
prints "BUG:" is not a kernel bug. Each failure is reported with the test
that was running: the last marker the pytest plugin wrote to /dev/kmsg
(ordered with the kernel's own messages), else the last pytest node id
printed (``pytest -v``).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field

# Printed by vfio_hil._lab.guest (user output) and pytest_plugin (kernel log).
MARK = "VFIO-HIL-LAB:"
GUEST_UP = f"{MARK} guest up"
COMMAND_START = f"{MARK} command start"
COMMAND_EXIT = f"{MARK} command exit"
TEST_MARK = "vfio-hil: test "

_TIMESTAMP = re.compile(r"\[\s*\d+\.\d{6}\]\s?")
_NODE_ID = re.compile(r"^(?P<node>[\w./-]+\.py::\S+)")

# (kind, fatal, pattern): first match wins, so specific patterns come first.
# The strings are the kernel's own printk formats: kernel/watchdog.c,
# kernel/watchdog_perf.c, kernel/hung_task.c, kernel/rcu/tree_stall.h,
# kernel/panic.c, arch/x86/kernel/dumpstack.c and traps.c, lib/bug.c.
_PATTERNS: tuple[tuple[str, bool, re.Pattern[str]], ...] = (
    ("soft lockup", True, re.compile(r"watchdog: BUG: soft lockup - CPU#\d+ stuck")),
    ("hard lockup", True, re.compile(r"[Ww]atchdog: .*[Hh]ard LOCKUP")),
    ("hung task", True, re.compile(r"INFO: task \S.* blocked for more than \d+ seconds")),
    ("rcu stall", True, re.compile(r"rcu: INFO: rcu_\w+ (?:self-)?detected stalls?")),
    ("panic", True, re.compile(r"Kernel panic - not syncing")),
    ("oops", True, re.compile(r"\bOops: ")),
    ("general protection fault", True, re.compile(r"^general protection fault")),
    ("BUG", True, re.compile(r"\bBUG: ")),
    ("warning", False, re.compile(r"WARNING: CPU: \d+ PID: \d+ at ")),
)
# One report often trips several patterns ("BUG: unable to handle page
# fault" then "Oops: 0000 [#1]"); later lines of an open report join it.
_SAME_REPORT = frozenset({"oops", "BUG", "general protection fault"})
_CONTEXT_LINES = 40
_END_OF_REPORT = re.compile(r"---\[ end (?:trace|Kernel panic)")


@dataclass
class Finding:
    """One kernel failure report seen on the console."""

    kind: str
    fatal: bool
    line: str
    line_no: int
    test: str | None
    context: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """``oops during tests/x.py::test_y (console line 12): Oops: ...``."""
        where = f"during {self.test}" if self.test else "outside any test"
        return f"{self.kind} {where} (console line {self.line_no}): {self.line}"


def split_kernel_text(line: str) -> tuple[str, str | None]:
    """Split a console line into (user text, kernel text after the last timestamp)."""
    line = line.rstrip("\r\n")
    stamps = list(_TIMESTAMP.finditer(line))
    if not stamps:
        return line, None
    return line[: stamps[-1].start()], line[stamps[-1].end() :]


def classify(kernel_text: str) -> tuple[str, bool] | None:
    """``(kind, fatal)`` if a kernel log message starts a failure report."""
    for kind, fatal, pattern in _PATTERNS:
        if pattern.search(kernel_text):
            return kind, fatal
    return None


@dataclass
class ConsoleScanner:
    """Incremental scanner: ``feed`` each console line with its arrival time."""

    findings: list[Finding] = field(default_factory=list)
    current_test: str | None = None
    guest_up_at: float | None = None
    command_start_at: float | None = None
    first_test_at: float | None = None
    command_exit: int | None = None
    lines: int = 0
    _open: Finding | None = None

    def feed(self, line: str, at: float = 0.0) -> Finding | None:
        """Consume one line; returns a new Finding when one starts on it."""
        self.lines += 1
        user, kernel = split_kernel_text(line)
        self._user_markers(user, at)
        if kernel is None:
            return None
        if TEST_MARK in kernel:
            self._test_started(kernel.split(TEST_MARK, 1)[1].strip(), at)
            return None
        hit = classify(kernel)
        opened = self._open
        if hit and not (opened and opened.kind in _SAME_REPORT and hit[0] in _SAME_REPORT):
            finding = Finding(hit[0], hit[1], kernel.strip(), self.lines, self.current_test)
            self.findings.append(finding)
            self._open = finding
            return finding
        if opened is not None:
            opened.context.append(kernel)
            if len(opened.context) >= _CONTEXT_LINES or _END_OF_REPORT.search(kernel):
                self._open = None
        return None

    def _test_started(self, node: str, at: float) -> None:
        self.current_test = node or None
        if self.first_test_at is None:
            self.first_test_at = at

    def _user_markers(self, text: str, at: float) -> None:
        node = _NODE_ID.match(text.strip())
        if node:
            self._test_started(node.group("node"), at)
        elif GUEST_UP in text and self.guest_up_at is None:
            self.guest_up_at = at
        elif COMMAND_START in text and self.command_start_at is None:
            self.command_start_at = at
        elif COMMAND_EXIT in text:
            with contextlib.suppress(IndexError, ValueError):
                self.command_exit = int(text.split(COMMAND_EXIT, 1)[1].split()[0])

    @property
    def fatal(self) -> list[Finding]:
        """Findings that fail a lab run (everything but WARNINGs)."""
        return [f for f in self.findings if f.fatal]


def scan(text: str) -> ConsoleScanner:
    """Scan a whole console log (for tests and post-mortems)."""
    scanner = ConsoleScanner()
    for line in text.splitlines():
        scanner.feed(line)
    return scanner
