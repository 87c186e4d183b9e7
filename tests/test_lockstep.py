"""The one lockstep engine: its twin, its timing rule, and who follows them.

A differential check is only worth its answer if it compares like with
like: the twin of a simulated device must be that device's configuration
again, on any host.  And the engine, the scenario player and the C
reproducer must agree on which steps may signal late (the kernel delivers
INTx from interrupt context and the unmask eventfd's re-fire from a
workqueue): one that reads too early reports a disagreement that is not one.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from vfio_hil import PciFunction, SimDevice
from vfio_hil import _uapi as u
from vfio_hil._diff import SLOTS, run_differential
from vfio_hil._fuzz.creplay import c_program
from vfio_hil._fuzz.export import scenario_text
from vfio_hil._fuzz.facts import DeviceFacts
from vfio_hil._host import platform
from vfio_hil._lockstep import (
    BarWrite,
    Clear,
    GetIrqInfo,
    Lockstep,
    Played,
    Raise,
    Reopen,
    Reset,
    SetCommand,
    SetDisIntx,
    SetIrqs,
    Side,
    Step,
    Timing,
    WriteEventfd,
    irq_counts,
    twin_of,
)
from vfio_hil._scenario import parse_scenario, play_scenario
from vfio_hil._targets import parse_target

_FDS = u.VFIO_IRQ_SET_ACTION_TRIGGER | u.VFIO_IRQ_SET_DATA_EVENTFD
_LOOP = u.VFIO_IRQ_SET_ACTION_TRIGGER | u.VFIO_IRQ_SET_DATA_NONE
INTX, MSI, MSIX, REQ = 0, 1, 2, 4

# --- the twin ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: SimDevice.edu(kernel="6.1"),
        lambda: SimDevice.virtio_msix(64, kernel="6.12"),
        lambda: SimDevice.virtio_msix(2048, kernel="7.3"),
        lambda: SimDevice(PciFunction(msi_vectors=4, pci_2_3=False, intx_level_at_enable=False)),
        lambda: SimDevice(PciFunction(msix_vectors=8, dyn_msix=True, pcie=True, host_vectors=3)),
        lambda: SimDevice(PciFunction(intx_pin=False, msi_vectors=32, can_reset=False)),
    ],
)
def test_the_twin_of_a_simulated_device_is_that_device_again(make: Any) -> None:
    with make() as dev, twin_of(dev) as twin:
        assert twin.function == dev.function
        assert twin.profile == dev.profile
        assert (twin.stimulus is None) == (dev.stimulus is None)
        assert twin.read_region(7, 0, 4) == dev.read_region(7, 0, 4)  # vendor, device


@pytest.fixture(params=[True, False], ids=["under-qemu", "bare-metal"])
def host_is_qemu(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[bool]:
    monkeypatch.setattr(platform, "running_under_qemu", lambda *a: request.param)
    platform.host_platform.cache_clear()
    yield request.param
    platform.host_platform.cache_clear()


@pytest.mark.parametrize("spec", ["sim:edu", "sim:virtio_msix", "sim:edu@7.3", "sim:edu@6.1"])
def test_a_simulation_agrees_with_its_twin_on_any_host(host_is_qemu: bool, spec: str) -> None:
    report = run_differential(parse_target(spec).open, seeds=range(20), length=30)
    assert report.disagreements == [], report.details()
    assert report.cases > 20


@pytest.mark.parametrize("spec", ["sim:edu", "sim:virtio_msix"])
def test_vfio_hil_diff_on_a_simulation_reports_agreement(spec: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vfio_hil", "diff", spec, "--seeds", "5"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert " 0 disagreements" in done.stdout


def test_a_real_device_under_qemu_loses_a_level_raised_before_enable(
    host_is_qemu: bool,
) -> None:
    # QEMU's IO-APIC drops a level raised before request_irq(): the twin of a
    # device in a QEMU guest must not expect that signal; elsewhere it must.
    assert platform.host_platform().intx_level_at_enable is not host_is_qemu


# --- lateness: one rule, three readers -----------------------------------------------


class LikeKernel:
    """A SimDevice that, like a real kernel, never promises its signals are in."""

    def __init__(self, device: SimDevice) -> None:
        self._device = device

    def quiesce(self) -> bool:
        self._device.quiesce()
        return False

    def reopen(self) -> LikeKernel:
        self._device.reopen()
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._device, name)


@dataclass(frozen=True)
class RecordingTiming(Timing):
    """Remembers each ``late`` it was asked about; never sleeps."""

    seen: list[bool] = field(default_factory=list)

    def read(self, read: Any, expected: Sequence[int], late: bool) -> list[int]:
        self.seen.append(late)
        return super().read(read, expected, False)


def _steps() -> list[Step]:
    return [
        SetIrqs(_FDS, INTX, 0, 1, fds=("e0",)),
        SetIrqs(_LOOP, MSI, 0, 1),
        SetIrqs(_LOOP, MSIX, 0, 1),
        SetIrqs(_LOOP, REQ, 0, 1),
        SetIrqs(_FDS, REQ, 0, 1, fds=("e1",)),
        SetDisIntx(True),
        SetDisIntx(False),
        Reopen(),
        Reset(),
        WriteEventfd(2),
        Raise(1),
        Clear(1),
        Clear(),
        GetIrqInfo(INTX),
        GetIrqInfo(5),
        SetCommand(0x0507),
        SetCommand(0x0103),
        BarWrite(0x04, 7),
        BarWrite(0x60, 1),
        BarWrite(0x64, 0xFFFFFFFF),
    ]


def _expected_late(step: Step, raised: bool) -> bool:
    """The kernel's rule, written out: what can signal after it returned."""
    if isinstance(step, GetIrqInfo | BarWrite) and not (
        isinstance(step, BarWrite) and step.offset == 0x60
    ):
        return False  # vfio_pci_ioctl_get_irq_info() only reads; other BAR writes raise nothing
    if isinstance(step, WriteEventfd | Raise | BarWrite):
        return True  # the virqfd's workqueue; a raise's interrupt (edu's 0x60 register)
    if isinstance(step, SetDisIntx | SetCommand | Reopen):
        return raised  # an asserted line is delivered (or re-fired) from IRQ context
    if isinstance(step, SetIrqs) and raised:
        return step.index in (INTX, MSI) or (step.index == REQ and step.flags == _LOOP)
    return False


def _lockstep_flags(steps: list[Step]) -> tuple[list[bool], list[Played]]:
    timing = RecordingTiming()
    kernel: Any = LikeKernel(SimDevice.edu(kernel="6.12"))
    run = Lockstep(Side(kernel, SLOTS), Side(SimDevice.edu(kernel="6.12"), SLOTS), timing)
    try:
        trace = []
        for step in steps:
            played, bad = run.step(step)
            assert bad is None, bad
            trace.append(played)
    finally:
        run.close()
    return list(timing.seen), trace


def _scenario_flags(
    trace: list[Played], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> list[bool]:
    timing = RecordingTiming(recheck=True)
    monkeypatch.setattr("vfio_hil._scenario.play.REPLAY", timing)
    dev = SimDevice.edu(kernel="6.12")
    facts = DeviceFacts.of(dev, dev.profile, irq_counts(dev))
    scenario = parse_scenario(scenario_text(trace, facts, "lateness"), tmp_path / "late.yaml")
    like_kernel: Any = LikeKernel(dev)
    play_scenario(scenario, like_kernel, dev.profile)
    return list(timing.seen)


def _c_flags(trace: list[Played]) -> list[bool]:
    dev = SimDevice.edu(kernel="6.12")
    facts = DeviceFacts.of(dev, dev.profile, irq_counts(dev))
    source = c_program(trace, facts, "late.yaml")
    dev.close()
    return [flag == "1" for flag in re.findall(r", want, ([01])\);$", source, re.MULTILINE)]


@pytest.mark.parametrize("raised", [False, True], ids=["quiet", "raised"])
@pytest.mark.parametrize("step", _steps(), ids=repr)
def test_engine_scenario_player_and_c_program_agree_on_lateness(
    step: Step, raised: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    prefix: list[Step] = [SetIrqs(_FDS, INTX, 0, 1, fds=("e3",)), Raise(1)] if raised else []
    steps = [*prefix, step]
    want = [_expected_late(s, r) for s, r in zip(steps, _raised_before(steps), strict=True)]
    engine, trace = _lockstep_flags(steps)
    assert engine == want
    assert _scenario_flags(trace, monkeypatch, tmp_path) == want
    assert _c_flags(trace) == want


def _raised_before(steps: list[Step]) -> list[bool]:
    """Whether the device's status is raised while each step runs (a raise counts)."""
    raised, out = False, []
    for step in steps:
        raised = raised or isinstance(step, Raise)
        out.append(raised)
        if isinstance(step, Clear) and step.value == 0xFFFFFFFF:
            raised = False
    return out


def test_a_simulated_kernel_side_is_never_waited_for() -> None:
    timing = RecordingTiming()
    run = Lockstep(
        Side(SimDevice.edu(kernel="6.12"), SLOTS), Side(SimDevice.edu(kernel="6.12"), SLOTS), timing
    )
    try:
        for step in [SetIrqs(_FDS, INTX, 0, 1, fds=("e0",)), Raise(1), WriteEventfd(1)]:
            assert run.play(step) is None
    finally:
        run.close()
    assert timing.seen == [False, False, False]


def test_a_long_run_keeps_no_record_of_past_signals() -> None:
    # A fuzz run makes millions of loopbacks on one SimDevice; the model's
    # per-request record of what it signalled must not outlive the request.
    from vfio_hil import EventFd, IrqIndex, IrqSet

    with SimDevice.virtio_msix(4) as dev, EventFd() as efd:
        dev.set_irqs(IrqSet.eventfds(IrqIndex.MSIX, 0, [efd]))
        for _ in range(2000):
            dev.set_irqs(IrqSet.trigger(IrqIndex.MSIX, 0, 1))
        assert efd.read() == 2000
        assert not dev.model.signalled
