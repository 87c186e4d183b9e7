"""pytest collection: a scenario file is a ``ScenarioFile``, one item per target.

Rule (``is_scenario_file``, in ``discover``): a ``.yaml``/``.yml`` file is a
scenario when it has the top-level marker ``vfio-hil: scenario/1``; any other
YAML file is not collected, wherever it lies.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from vfio_hil._model import KernelProfile
from vfio_hil._plugin.state import target_info, targets_of
from vfio_hil._scenario.discover import is_scenario_file
from vfio_hil._scenario.expect import NoExpectationError
from vfio_hil._scenario.load import Scenario, ScenarioSyntaxError, load_scenario
from vfio_hil._scenario.play import ExpectationError, StepWouldOops, play_scenario
from vfio_hil._scenario.report import render_failure, step_header
from vfio_hil._scenario.steps import ScenarioStep
from vfio_hil._targets import Target

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr

__all__ = ["ScenarioFile", "ScenarioItem", "collect_file", "is_scenario_file"]


def collect_file(file_path: Path, parent: pytest.Collector) -> pytest.File | None:
    """The ``pytest_collect_file`` hook's answer for ``file_path``."""
    if not is_scenario_file(file_path, parent.config.rootpath):
        return None
    node: pytest.File = ScenarioFile.from_parent(parent, path=file_path)
    return node


def _shown(config: pytest.Config, path: Path) -> str:
    """``path`` relative to the rootdir when it is below it."""
    try:
        return str(path.relative_to(config.rootpath))
    except ValueError:
        return str(path)


class ScenarioFile(pytest.File):
    """One scenario file; a malformed one is a collection error naming file:line."""

    def collect(self) -> Iterator[ScenarioItem]:
        try:
            scenario = load_scenario(self.path, _shown(self.config, self.path))
        except ScenarioSyntaxError as err:
            raise self.CollectError(str(err)) from None
        for target in targets_of(self.config):
            yield ScenarioItem.from_parent(
                self, name=f"{self.path.stem}[{target.spec}]", scenario=scenario, target=target
            )


class ScenarioItem(pytest.Item):
    """The scenario on one target: open, play every step, clean up."""

    def __init__(self, *, scenario: Scenario, target: Target, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario
        self.target = target
        self.kernel: KernelProfile | None = None
        self.current: ScenarioStep | None = None

    def _track(self, step: ScenarioStep) -> None:
        self.current = step

    def runtest(self) -> None:
        self.current = None
        info = target_info(self.config, self.target)
        self.user_properties.extend(info.junit_properties())
        if info.error or info.facts is None:
            pytest.fail(f"{self.target.spec} cannot be opened: {info.error}", pytrace=False)
        self.kernel = info.facts.kernel
        # requires: is checked like the plugin's markers, on the probed facts.
        reason = self.scenario.requires.unmet(info.facts)
        if reason is not None:
            others = [
                i
                for t in targets_of(self.config)
                if (i := target_info(self.config, t)).facts
                and self.scenario.requires.unmet(i.facts) is None
            ]
            if self.config.getoption("vfio_require", False) and not others:
                pytest.fail(
                    f"no target can run this scenario (--vfio-require): {reason}", pytrace=False
                )
            # Reported at the scenario's location, as a skip mark's would be.
            raise pytest.skip.Exception(reason, _use_item_location=True)
        with self.target.hold():
            device = self.target.open()
            play_scenario(self.scenario, device, self.kernel, self._track)

    def _header(self, step: ScenarioStep) -> str:
        where = _shown(self.config, self.path)
        return step_header(where, step, self.scenario.name, self.target.spec)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | TerminalRepr:
        exc = excinfo.value
        kernel = self.kernel.name if self.kernel else "?"
        if isinstance(exc, ExpectationError):
            return render_failure(exc, self._header(exc.step), kernel)
        if isinstance(exc, StepWouldOops):
            return f"{self._header(exc.step)} (kernel {kernel}): {exc}"
        if isinstance(exc, NoExpectationError) and self.current is not None:
            return f"{self._header(self.current)} (kernel {kernel}): {exc}"
        default = super().repr_failure(excinfo, style)
        if self.current is None:
            return default
        return f"{self._header(self.current)} raised {type(exc).__name__}\n{default}"

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.scenario.line - 1, f"{self.scenario.name} [{self.target.spec}]"
