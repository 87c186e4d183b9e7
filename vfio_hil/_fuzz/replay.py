"""``vfio-hil replay FILE``: play one scenario file on one target, with the
scenario runner (``vfio_hil._scenario``), and report as pytest would."""

from __future__ import annotations

import sys
from pathlib import Path

from vfio_hil._device import Device
from vfio_hil._diff.twin import running_kernel_profile
from vfio_hil._errors import VfioError, VfioHilError
from vfio_hil._model import KernelProfile
from vfio_hil._scenario import ExpectationError, ScenarioSyntaxError, load_scenario, play_scenario
from vfio_hil._scenario.expect import NoExpectationError
from vfio_hil._scenario.report import render_failure, step_header
from vfio_hil._sim.device import DEFAULT_KERNEL, SimDevice
from vfio_hil._targets import Target, parse_target

__all__ = ["replay", "sim_target"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _kernel_of(device: Device) -> KernelProfile:
    return device.profile if isinstance(device, SimDevice) else running_kernel_profile()


def sim_target(spec: str) -> Target:
    """``sim:PRESET[@KERNEL]``, or ``sim:virtio_msix:N[@KERNEL]`` for N MSI-X vectors.

    A counterexample's expectations past an index's end hold only for the
    exact counts it was found with (the bench uses 8 vectors, the preset 64).
    """
    text = spec.removeprefix("sim:")
    preset, _, kernel = text.partition("@")
    name, _, vectors = preset.partition(":")
    if name != "virtio_msix" or not vectors:
        return parse_target(spec)
    if not vectors.isdigit():
        raise VfioHilError(f"bad vector count in {spec!r}", "write e.g. sim:virtio_msix:8@6.12")
    kernel = kernel or DEFAULT_KERNEL
    return Target(
        f"sim:{preset}@{kernel}",
        True,
        lambda: SimDevice.virtio_msix(int(vectors), kernel=kernel),
    )


def replay(path: Path, spec: str) -> int:
    """Play ``path`` on target ``spec``: 0 passed, 1 a step differed, 2 could not run."""
    try:
        scenario = load_scenario(path)
        target = sim_target(spec) if spec.startswith("sim:") else parse_target(spec)
        device = target.open()
    except (ScenarioSyntaxError, VfioHilError, VfioError) as exc:
        print(f"vfio-hil replay: {exc}", file=sys.stderr)
        return EXIT_USAGE
    kernel = _kernel_of(device)
    reason = scenario.requires.unmet(device, kernel)
    if reason is not None:
        device.close()
        print(f"{path}: cannot run on {target.spec}: {reason}", file=sys.stderr)
        return EXIT_USAGE

    def reopen(dev: Device) -> Device:
        if isinstance(dev, SimDevice):
            return dev.reopen()
        dev.close()
        return target.open()

    try:
        play_scenario(scenario, device, reopen, kernel)
    except ExpectationError as exc:
        header = step_header(str(path), exc.step, scenario.name, target.spec)
        print(render_failure(exc, header, kernel.name))
        return EXIT_FAILED
    except NoExpectationError as exc:
        print(f"{path}:{exc.line}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"{path}: {len(scenario.steps)} steps as expected on {target.spec}")
    return EXIT_OK
