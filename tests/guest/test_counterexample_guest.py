"""A seeded failure on a real device: the counterexample files travel.

Inside the lab, the state machine runs the real vfio-pci against a twin
answered by a behaviour mutant, so it must fail; the scenario file it writes
records what the kernel did. That file must then pass on the real device
(``vfio-hil replay``) and fail on the mutant, and the C program must compile
with gcc against <linux/vfio.h> and replay the same steps on the device,
observing what was recorded.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.guest.conftest import lab_devices
from vfio_hil import open_device
from vfio_hil._fuzz.mutants import MUTANTS
from vfio_hil._fuzz.replay import replay
from vfio_hil._host.platform import running_kernel_profile
from vfio_hil._lockstep import twin_of
from vfio_hil._scenario import ExpectationError, load_scenario, play_scenario
from vfio_hil.stateful import Divergence, fuzz_settings, make_machine

# A mutant each lab device exposes on every kernel of the matrix.
_EDU = "1234:11e8"
_MUTANT_FOR = {_EDU: "unmask-no-refire"}
_DEFAULT_MUTANT = "second-unmask-eventfd-replaces"
# Hypothesis' final replay of the first failing example writes the files;
# shrinking would take minutes under TCG.
_NO_SHRINK = settings(
    fuzz_settings("ci"),
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    report_multiple_bugs=False,
)


def _vendor_device(address: str) -> str:
    sysfs = Path("/sys/bus/pci/devices") / address
    vendor = (sysfs / "vendor").read_text().strip().removeprefix("0x")
    device = (sysfs / "device").read_text().strip().removeprefix("0x")
    return f"{vendor}:{device}"


@pytest.mark.parametrize("address", lab_devices() or ["none"])
def test_a_mutant_found_on_the_real_kernel_replays_from_yaml_and_c(
    address: str, tmp_path: Path
) -> None:
    profile = running_kernel_profile()
    name = _MUTANT_FOR.get(_vendor_device(address), _DEFAULT_MUTANT)
    (mutant,) = [m for m in MUTANTS if m.name == name]
    machine = make_machine(
        lambda: open_device(address),
        lambda dev: twin_of(dev, profile, model=mutant.model),
        profile=profile,
        out_dir=tmp_path,
        settings=_NO_SHRINK,
    )
    try:
        with pytest.raises(Divergence):
            run_state_machine_as_test(machine, settings=_NO_SHRINK)
    finally:
        machine.close_device()
    yaml_file, c_file = machine.stats().counterexamples
    print(f"{address}: {name} found after {machine.stats().examples} examples")

    # The scenario records the kernel's answers: it passes on the device...
    assert replay(yaml_file, address) == 0
    # ... and fails on the mutant.
    with open_device(address) as real:
        wrong = twin_of(real, profile, model=mutant.model)
    with pytest.raises(ExpectationError):
        play_scenario(load_scenario(yaml_file), wrong, profile)
    wrong.close()

    gcc = shutil.which("gcc")
    assert gcc is not None, "the lab guest shares the host's userspace: install gcc"
    binary = tmp_path / "replay"
    subprocess.run(
        [gcc, "-Wall", "-Wextra", "-Werror", "-o", str(binary), str(c_file)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    done = subprocess.run(
        [str(binary), address], capture_output=True, text=True, timeout=60, check=False
    )
    print(done.stdout)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
