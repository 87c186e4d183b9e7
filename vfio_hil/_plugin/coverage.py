"""``--vfio-coverage``: the state-space cells a test session reached.

Recorded only while test bodies run (not while fixtures open devices or
build twins, nor at teardown's cleaning); reported at the end as a terminal
table, JUnit XML testsuite properties, and with ``--vfio-coverage-html`` a
heat map.  Under pytest-xdist each worker counts its own tests only (the
controller runs none), so the report is of this process's tests.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from vfio_hil._coverage.recorder import Recorder, recording

__all__ = ["CoveragePlugin"]

NAME = "vfio-hil-coverage"


class CoveragePlugin:
    def __init__(self, html: Path | None) -> None:
        self.recorder = Recorder(events=True)
        self.html = html
        self.text = ""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        with recording(self.recorder):
            return (yield)

    @pytest.hookimpl(tryfirst=True)  # before junitxml writes its file
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from vfio_hil._coverage.report import coverage_of, junit_properties, table, write_html

        if not self.recorder.counts:
            self.text = "state-space coverage: no test sent a request to a model"
            return
        found = coverage_of(self.recorder)
        self.text = table(found)
        xml = _junit(session.config)
        if xml is not None:
            for name, value in junit_properties(found):
                xml.add_global_property(name, value)
        if self.html is not None:
            write_html(found, self.html, "vfio-hil pytest")
            self.text += f"\nheat map written to {self.html}"

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.text:
            terminalreporter.write_sep("-", "vfio-hil state-space coverage")
            terminalreporter.write_line(self.text)


def _junit(config: pytest.Config) -> Any:
    try:
        from _pytest.junitxml import xml_key  # what record_testsuite_property uses
    except ImportError:
        return None
    return config.stash.get(xml_key, None)


def register(config: pytest.Config) -> None:
    """Install the plugin if ``--vfio-coverage`` or ``--vfio-coverage-html`` was given."""
    from vfio_hil._coverage.report import check_writable

    html = config.getoption("vfio_coverage_html")
    if not (config.getoption("vfio_coverage") or html):
        return
    if html is not None:
        check_writable(Path(html), "--vfio-coverage-html")
    config.pluginmanager.register(CoveragePlugin(Path(html) if html else None), NAME)
