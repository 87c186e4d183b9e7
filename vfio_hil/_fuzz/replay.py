"""``vfio-hil replay FILE``: play one scenario file on one target, with the
scenario runner (``vfio_hil._scenario``), and report as pytest would."""

from __future__ import annotations

import sys
from pathlib import Path

from vfio_hil._errors import VfioError, VfioHilError
from vfio_hil._exit import Exit
from vfio_hil._needs import Facts
from vfio_hil._scenario import ExpectationError, ScenarioSyntaxError, load_scenario, play_scenario
from vfio_hil._scenario.expect import NoExpectationError
from vfio_hil._scenario.play import StepWouldOops
from vfio_hil._scenario.report import render_failure, step_header
from vfio_hil._targets import parse_target

__all__ = ["replay"]


def replay(path: Path, spec: str) -> int:
    """Play ``path`` on target ``spec``: 0 passed, 1 a step differed, 2 could not run."""
    try:
        scenario = load_scenario(path)
        target = parse_target(spec)
        device = target.open()
    except (ScenarioSyntaxError, VfioHilError, VfioError) as exc:
        print(f"vfio-hil replay: {exc}", file=sys.stderr)
        return Exit.USAGE
    kernel = device.kernel
    reason = scenario.requires.unmet(Facts.of(device, target.spec))
    if reason is not None:
        device.close()
        print(f"{path}: cannot run: {reason}", file=sys.stderr)
        return Exit.USAGE

    try:
        play_scenario(scenario, device, kernel)
    except ExpectationError as exc:
        header = step_header(str(path), exc.step, scenario.name, target.spec)
        print(render_failure(exc, header, kernel.name))
        return Exit.FAILED
    except NoExpectationError as exc:
        print(f"{path}:{exc.line}: {exc}", file=sys.stderr)
        return Exit.USAGE
    except StepWouldOops as exc:
        print(f"{path}:{exc.step.line}: {exc} (on {target.spec})")
        return Exit.FAILED
    print(f"{path}: {len(scenario.steps)} steps as expected on {target.spec}")
    return Exit.OK
