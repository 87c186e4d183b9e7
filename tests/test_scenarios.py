"""Scenario files: collection, playing, reports, per-kernel expectations.

Each pytester run disables the installed vfio-hil plugin (``-p no:vfio_hil``)
and collects through a conftest that calls ``collect_file``, so these tests
check the scenario package alone; targets come from ``VFIO_HIL_SIM``, or from
the conftest when a test needs a device no preset has.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from vfio_hil import PROFILES, IrqIndex, IrqSet, SimDevice, VfioError, kernel_profile
from vfio_hil._device import Device
from vfio_hil._scenario import (
    ExpectationError,
    is_scenario_file,
    load_scenario,
    parse_scenario,
    play_scenario,
)
from vfio_hil._scenario.play import StepWouldOops

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "scenarios").glob("*.yaml"))
KERNELS = ["6.1", "6.12", "7.3"]
BASE_ARGS = ("-p", "no:vfio_hil", "-p", "no:cacheprovider", "-rs")
MARK = "vfio-hil: scenario/1\n"  # line 1 of every scenario file
# Scenarios only the lab's device kinds (sim:nvme_vf, sim:xhci_msi; without
# interrupt remapping) can run: tests/test_sim_kinds.py plays them.
KINDS_ONLY = ("msi_multi_vector", "vf_no_intx", "msi_multi_vector_without_remapping")

CONFTEST = """
from vfio_hil._plugin.scenarios import collect_file

def pytest_collect_file(file_path, parent):
    return collect_file(file_path, parent)
"""

# A device with both MSI and MSI-X, which neither preset has.
MSI_AND_MSIX_CONFTEST = (
    CONFTEST
    + """
from vfio_hil import SimDevice
from vfio_hil._plugin.state import TARGETS
from vfio_hil._targets import Target

def pytest_configure(config):
    kernel = "{kernel}"
    config.stash[TARGETS] = [
        Target(f"sim:msi_msix@{{kernel}}", True, lambda: SimDevice(
            msi_vectors=4, msix_vectors=16, pcie=True, kernel=kernel, name="sim:msi_msix")),
    ]
"""
)


@pytest.fixture
def scenario_dir(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester directory whose conftest collects scenario files."""
    monkeypatch.delenv("VFIO_HIL_DEVICES", raising=False)
    monkeypatch.delenv("VFIO_HIL_SIM", raising=False)
    pytester.makeconftest(CONFTEST)
    return pytester


def run(pytester: pytest.Pytester, sims: str, *args: str) -> pytest.RunResult:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VFIO_HIL_SIM", sims)
        return pytester.runpytest(*BASE_ARGS, *args)


def outcomes_by_file(result: pytest.RunResult) -> dict[str, set[str]]:
    """``{file stem: {"PASSED", "SKIPPED", ...}}`` from a ``-v`` run."""
    found: dict[str, set[str]] = {}
    for match in re.finditer(
        r"(\w+)\.yaml::\S+ (PASSED|FAILED|SKIPPED|ERROR)", result.stdout.str()
    ):
        found.setdefault(match[1], set()).add(match[2])
    return found


# --- the shipped scenarios -----------------------------------------------------------


@pytest.mark.parametrize("kernel", KERNELS)
def test_shipped_scenarios_pass_on_the_simulated_presets(
    scenario_dir: pytest.Pytester, kernel: str
) -> None:
    shutil.copytree(ROOT / "scenarios", scenario_dir.path / "scenarios")
    result = run(scenario_dir, f"edu@{kernel},virtio_msix@{kernel}", "-v", "scenarios")
    counts = result.parseoutcomes()
    assert counts.get("failed", 0) == counts.get("errors", 0) == 0, result.stdout.str()
    assert counts["passed"] + counts["skipped"] == 2 * len(SHIPPED)
    outcomes = outcomes_by_file(result)
    # Every file but the MSI/MSI-X switch and the lab's device kinds' own
    # (tests/test_sim_kinds.py plays those) runs on one preset or the other.
    ran = {stem for stem, seen in outcomes.items() if "PASSED" in seen}
    assert ran == {p.stem for p in SHIPPED} - {"switch_msi_msix", *KINDS_ONLY}


@pytest.mark.parametrize("kernel", KERNELS)
def test_shipped_scenarios_pass_on_a_device_with_msi_and_msix(
    scenario_dir: pytest.Pytester, kernel: str
) -> None:
    shutil.copytree(ROOT / "scenarios", scenario_dir.path / "scenarios")
    scenario_dir.makeconftest(MSI_AND_MSIX_CONFTEST.format(kernel=kernel))
    result = scenario_dir.runpytest(*BASE_ARGS, "-v", "scenarios")
    counts = result.parseoutcomes()
    assert counts.get("failed", 0) == counts.get("errors", 0) == 0, result.stdout.str()
    assert "PASSED" in outcomes_by_file(result)["switch_msi_msix"]


def test_every_shipped_scenario_has_an_outcome_for_every_lab_kernel() -> None:
    for path in SHIPPED:
        for step in load_scenario(path).steps:
            for kernel in PROFILES:
                step.expect.select(kernel_profile(kernel))  # raises unless one range holds it


# --- failure reports -----------------------------------------------------------------

WRONG = (
    MARK
    + """\
name: wrong expectation
eventfds: 2
steps:
  - enable: {index: MSIX, fds: [e0, e1]}
  - trigger_bool: {index: MSIX, start: 0, data: [1, 0]}
    expect: {signals: {e1: 1}}
"""
)


def test_a_wrong_signal_fails_with_file_line_and_expected_vs_actual(
    scenario_dir: pytest.Pytester,
) -> None:
    scenario_dir.makefile(".yaml", wrong=WRONG)
    result = run(scenario_dir, "virtio_msix@6.12")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "wrong.yaml:6: step 2 of 'wrong expectation' on sim:virtio_msix@6.12"
            " (kernel 6.12) failed",
            "    - trigger_bool: {index: MSIX, start: 0, data: [1, 0]}",
            "      expect: {signals: {e1: 1}}",
            "  request:  SET_IRQS(index=MSIX, DATA_BOOL|ACTION_TRIGGER, start=0, count=2,"
            " data=[1, 0])",
            "  expected: return 0; e0=0 e1=1",
            "  got:      return 0; e0=1 e1=0",
            "  - eventfd e0: expected 0, read 1",
            "  - eventfd e1: expected 1, read 0",
            "  (step 1 passed)",
        ]
    )


def test_a_wrong_errno_fails_showing_both_results(scenario_dir: pytest.Pytester) -> None:
    scenario_dir.makefile(
        ".yaml",
        wrong=MARK + "steps:\n  - trigger: {index: INTX}\n    expect: 0\n",
    )
    result = run(scenario_dir, "edu@6.1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "wrong.yaml:3: step 1 of 'wrong' on sim:edu@6.1 (kernel 6.1) failed",
            "  expected: return 0; (no eventfds)",
            "  got:      errno EINVAL; (no eventfds)",
            "  - expected return 0, got errno EINVAL",
        ]
    )


def test_an_exception_inside_a_step_is_reported_at_the_step(
    scenario_dir: pytest.Pytester,
) -> None:
    # Before the 2024 INTx fix a loopback with no trigger oopses (CVE-2024-26812).
    scenario_dir.makefile(
        ".yaml",
        oops=MARK + "steps:\n  - enable: {index: INTX, fds: [-1]}\n  - trigger: {index: INTX}\n",
    )
    result = run(scenario_dir, "virtio_msix@6.1.50")
    result.assert_outcomes(failed=1)
    # One line at the step, no traceback.
    result.stdout.fnmatch_lines(
        [
            "oops.yaml:4: step 2 of 'oops' on sim:virtio_msix@6.1.50 (kernel 6.1.50): "
            "step 2 (line 4) would oops this kernel: *(CVE-2024-26812)"
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_reportinfo_points_at_the_steps_key(scenario_dir: pytest.Pytester) -> None:
    scenario_dir.makefile(".yaml", where=MARK + "# a comment\nname: here\nsteps:\n  - reset\n")
    items, _ = scenario_dir.inline_genitems(*BASE_ARGS)
    assert [item.location for item in items] == [
        ("where.yaml", 3, "here [sim:edu@6.12]"),
        ("where.yaml", 3, "here [sim:virtio_msix@6.12]"),
    ]


# --- per-kernel expectations -----------------------------------------------------------

PER_KERNEL = (
    MARK
    + """\
eventfds: 2
steps:
  - enable: {index: MSIX, fds: [e0, e1]}
  - trigger: {index: MSIX, start: 0, count: 4}
    expect:
      "<6.5": {errno: EINVAL}
      ">=6.5": {signals: {e0: 1, e1: 1}}
"""
)


@pytest.mark.parametrize("kernel", KERNELS)
def test_per_kernel_expectations_select_by_the_targets_profile(
    scenario_dir: pytest.Pytester, kernel: str
) -> None:
    scenario_dir.makefile(".yaml", per_kernel=PER_KERNEL)
    run(scenario_dir, f"virtio_msix@{kernel}").assert_outcomes(passed=1)


@pytest.mark.parametrize(
    ("kernel", "chosen", "got"),
    [
        ("6.1", "'<6.5'", "errno EINVAL; e0=0 e1=0"),
        ("7.3", "'>=6.5'", "return 0; e0=1 e1=1"),
    ],
)
def test_swapped_kernel_expectations_fail_naming_the_chosen_range(
    scenario_dir: pytest.Pytester, kernel: str, chosen: str, got: str
) -> None:
    swapped = PER_KERNEL.replace('"<6.5"', "OLD").replace('">=6.5"', '"<6.5"')
    scenario_dir.makefile(".yaml", per_kernel=swapped.replace("OLD", '">=6.5"'))
    result = run(scenario_dir, f"virtio_msix@{kernel}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"  expected: *(kernel range {chosen})", f"  got:      {got}"])


def test_a_kernel_no_range_covers_fails_the_step(scenario_dir: pytest.Pytester) -> None:
    scenario_dir.makefile(
        ".yaml",
        gap=MARK + 'steps:\n  - reset:\n    expect: {"==6.1": 0, ">=7": 0}\n',
    )
    result = run(scenario_dir, "virtio_msix@6.12")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "gap.yaml:3: step 1 of 'gap' on sim:virtio_msix@6.12 (kernel 6.12): no expectation"
            " for kernel 6.12 (6.12.117): ranges are '==6.1', '>=7'"
        ]
    )


# --- requirements ------------------------------------------------------------------------


def test_targets_that_lack_a_requirement_are_skipped_with_the_reason(
    scenario_dir: pytest.Pytester,
) -> None:
    scenario_dir.makefile(
        ".yaml",
        needs=(
            MARK + "requires: {irq: INTX, stimulus: true, kernel: '>=6.5'}\nsteps:\n"
            "  - trigger: {index: INTX}\n    expect: {errno: EINVAL}\n"
        ),
    )
    result = run(scenario_dir, "edu@6.1,edu@6.12,virtio_msix@6.12")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines_random(
        [
            "SKIPPED [[]1[]] needs.yaml:3: sim:edu@6.1: needs kernel >=6.5; it runs 6.1",
            "SKIPPED [[]1[]] needs.yaml:3: sim:virtio_msix@6.12: needs a device with a stimulus*",
        ]
    )


def test_requirements_pass_and_the_scenario_runs(scenario_dir: pytest.Pytester) -> None:
    scenario_dir.makefile(
        ".yaml",
        needs=(
            MARK + "requires: {irq: [INTX, MSIX], min_count: 1, msix: 8, pcie: true, reset: true,"
            " dyn_msix: true, stimulus: false}\nsteps:\n  - reset\n"
        ),
    )
    result = run(scenario_dir, "edu@6.12,virtio_msix@6.12")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*sim:edu@6.12: needs MSIX count >= 8; it has 0"])


def test_exact_counts_select_only_a_device_with_those_counts(
    scenario_dir: pytest.Pytester,
) -> None:
    scenario_dir.makefile(
        ".yaml", exact=MARK + "requires: {counts: {MSIX: 8, INTX: 1}}\nsteps:\n  - reset\n"
    )
    result = run(scenario_dir, "virtio_msix@6.12,edu@6.12")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*sim:virtio_msix@6.12: needs MSIX count == 8; it has 64",
            "*sim:edu@6.12: needs MSIX count == 8; it has 0",
        ]
    )


# --- malformed files -----------------------------------------------------------------------

MALFORMED = {
    "unknown_key": (
        "name: x\nsteps:\n  - trigger: {index: INTX, cuont: 1}\n",
        "bad.yaml:4: step 1 (trigger): unknown key 'cuont' in trigger (did you mean 'count'?)*",
    ),
    "bad_index": (
        "eventfds: 1\nsteps:\n  - reset\n  - enable: {index: MSX, fds: [e0]}\n",
        "bad.yaml:5: step 2 (enable): bad index 'MSX' (did you mean 'MSIX'?)*",
    ),
    "wrong_type": (
        "eventfds: two\nsteps:\n  - reset\n",
        "bad.yaml:2: eventfds must be an integer, not the string 'two'",
    ),
    "missing_steps": (
        "name: no steps\nrequires: {irq: INTX}\n",
        "bad.yaml:1: the scenario is missing the required key 'steps'",
    ),
    "misspelt_top_level_key": (
        "name: x\nsteps:\n  - reset\nrequire: {irq: INTX}\n",
        "bad.yaml:5: unknown key 'require' in the scenario (did you mean 'requires'?)*",
    ),
    "bad_expect": (
        "steps:\n  - reset:\n    expect: {errno: EINVLA}\n",
        "bad.yaml:4: step 1 (reset): unknown errno 'EINVLA' (did you mean 'EINVAL'?)",
    ),
    "slot_past_eventfds": (
        "eventfds: 1\nsteps:\n  - enable: {index: INTX, fds: [e1]}\n",
        "bad.yaml:4: step 1 (enable): e1 is not a slot: 'eventfds: 1' gives only e0",
    ),
    "bad_kernel_range": (
        "steps:\n  - reset:\n    expect: {'=>6.5': 0}\n",
        "bad.yaml:4: step 1 (reset): bad kernel range '=>6.5'*",
    ),
    "bad_exact_count": (
        "requires:\n  counts: {MSX: 8}\nsteps:\n  - reset\n",
        "bad.yaml:3: bad index 'MSX' in requires.counts (did you mean 'MSIX'?)*",
    ),
    "invalid_yaml": (
        "steps:\n  - enable: {index: INTX\n",
        "bad.yaml:4: not valid YAML: *flow mapping on line 3)",
    ),
}


def test_a_malformed_scenario_is_a_collection_error_naming_file_and_line(
    scenario_dir: pytest.Pytester,
) -> None:
    (scenario_dir.path / "scenarios").mkdir()
    for case, (text, _) in MALFORMED.items():
        (scenario_dir.path / "scenarios" / f"{case}.yaml").write_text(MARK + text)
    result = run(scenario_dir, "edu@6.12")
    result.assert_outcomes(errors=len(MALFORMED))
    for case, (_, message) in MALFORMED.items():
        where = f"scenarios/{case}.yaml"
        result.stdout.fnmatch_lines(
            [f"*ERROR collecting {where}*", message.replace("bad.yaml", where)]
        )


# --- which files are scenarios -------------------------------------------------------------


def test_collection_rule(tmp_path: Path) -> None:
    (tmp_path / "scenarios" / "sub").mkdir(parents=True)
    cases = {
        "scenarios/sub/anything.yaml": ("name: no marker\nsteps:\n  - reset\n", False),
        "scenarios/sub/marked.yaml": (MARK, True),
        "top.yml": ("# a comment first\n" + MARK + "steps:\n  - reset\n", True),
        "quoted.yaml": ("'vfio-hil': scenario/2\n", True),  # claimed: the loader says why not
        "nested.yaml": ("jobs:\n  vfio-hil: scenario/1\n", False),
        "workflow.yaml": ("jobs:\n  build:\n    steps:\n      - run: make\n", False),
        "notes.txt": (MARK, False),
    }
    for name, (text, _) in cases.items():
        (tmp_path / name).write_text(text)
    assert {name: is_scenario_file(tmp_path / name) for name in cases} == {
        name: expected for name, (_, expected) in cases.items()
    }


def test_other_yaml_files_are_not_collected(scenario_dir: pytest.Pytester) -> None:
    scenario_dir.makefile(".yaml", config="jobs:\n  build:\n    steps: []\n")
    result = run(scenario_dir, "edu@6.12")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


# --- cleanup ---------------------------------------------------------------------------


class Recording:
    """A device that records the SET_IRQS requests and the close made through it."""

    def __init__(self, device: SimDevice) -> None:
        self.device = device
        self.requests: list[IrqSet] = []
        self.closed = False

    def __getattr__(self, name: str) -> object:
        return getattr(self.device, name)

    def set_irqs(self, irqset: IrqSet) -> int:
        self.requests.append(irqset)
        return self.device.set_irqs(irqset)

    def close(self) -> None:
        self.closed = True
        self.device.close()


@contextlib.contextmanager
def recorded_edu() -> Iterator[tuple[SimDevice, Recording]]:
    dev = SimDevice.edu(kernel="6.1")
    yield dev, Recording(dev)
    dev.close()


def _play(text: str, device: Recording, kernel: str = "6.1") -> None:
    scenario = parse_scenario(text, Path("cleanup.yaml"))
    fake: Device = device  # type: ignore[assignment]  # duck-typed Device
    play_scenario(scenario, fake, kernel_profile(kernel))


def test_a_failing_scenario_still_disables_clears_and_closes() -> None:
    with recorded_edu() as (dev, rec):
        text = (
            "eventfds: 1\nsteps:\n  - enable: {index: INTX, fds: [e0]}\n"
            "  - raise: 1\n    expect: quiet\n"  # wrong: the raise signals e0
        )
        with pytest.raises(ExpectationError):
            _play(text, rec)
        disables = [r for r in rec.requests if r == IrqSet.disable(r.index)]
        assert [r.index for r in disables] == list(IrqIndex)
        assert rec.closed
        with pytest.raises(VfioError):
            dev.set_irqs(IrqSet.trigger(IrqIndex.INTX))  # closed
        assert dev.reopen().stimulus is not None
        assert dev.stimulus is not None
        assert dev.stimulus.status() == 0  # the failed scenario's raise was cleared


def test_an_exception_inside_a_step_still_closes_the_device() -> None:
    dev = SimDevice.virtio_msix(kernel="6.1.50")
    rec = Recording(dev)
    with pytest.raises(StepWouldOops):
        _play("steps:\n  - enable: {index: INTX, fds: [-1]}\n  - trigger: {index: INTX}\n", rec)
    assert rec.closed


# --- the documentation's example -----------------------------------------------------------


def test_the_docs_example_passes(scenario_dir: pytest.Pytester) -> None:
    page = (ROOT / "docs" / "scenarios.md").read_text()
    example = re.search(r"```yaml\n(.*?)```", page, re.DOTALL)
    assert example is not None
    scenario_dir.makefile(".yaml", example=example[1])
    for kernel in KERNELS:
        result = run(scenario_dir, f"edu@{kernel},virtio_msix@{kernel}")
        result.assert_outcomes(passed=1, skipped=1)
