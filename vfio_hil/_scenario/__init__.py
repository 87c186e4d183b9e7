"""Scenario files: YAML sequences of VFIO IRQ steps, each collected as a pytest test.

The format is documented in docs/scenarios.md.  The plugin collects them
(``vfio_hil._plugin.scenarios``); ``load_scenario`` and ``play_scenario`` run
one outside pytest.
"""

from vfio_hil._scenario.discover import is_scenario_file
from vfio_hil._scenario.kernels import KernelRange
from vfio_hil._scenario.load import Scenario, ScenarioSyntaxError, load_scenario, parse_scenario
from vfio_hil._scenario.play import ExpectationError, play_scenario

__all__ = [
    "ExpectationError",
    "KernelRange",
    "Scenario",
    "ScenarioSyntaxError",
    "is_scenario_file",
    "load_scenario",
    "parse_scenario",
    "play_scenario",
]
