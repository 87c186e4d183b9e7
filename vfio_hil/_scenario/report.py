"""Failure text: the step (file:line and as written), expected and observed."""

from __future__ import annotations

import textwrap

from vfio_hil._scenario.expect import ByKernel, Expect
from vfio_hil._scenario.play import ExpectationError, Observed, describe_result
from vfio_hil._scenario.steps import ScenarioStep

__all__ = ["render_failure", "step_header"]


def step_header(where: str, step: ScenarioStep, scenario: str, target: str) -> str:
    return f"{where}:{step.line}: step {step.number} of {scenario!r} on {target}"


def _kernel_range(step: ScenarioStep, expected: Expect) -> str:
    if isinstance(step.expect, ByKernel):
        for rng, case in step.expect.cases:
            if case is expected:
                return f" (kernel range {str(rng)!r})"
    return ""


def _differences(want: Observed, got: Observed) -> list[str]:
    lines = []
    if want.result != got.result:
        lines.append(f"expected {describe_result(want.result)}, got {describe_result(got.result)}")
    for slot, (w, g) in enumerate(zip(want.counters, got.counters, strict=True)):
        if w != g:
            lines.append(f"eventfd e{slot}: expected {w}, read {g}")
    if want.command != got.command:
        shown = "nothing" if got.command is None else f"{got.command:#06x}"
        lines.append(f"PCI_COMMAND: expected {want.command:#06x}, read {shown}")
    if want.info != got.info:
        lines.append(f"GET_IRQ_INFO: expected {want.info}, answered {got.info}")
    return lines


def render_failure(failure: ExpectationError, header: str, kernel: str) -> str:
    step, want, got = failure.step, failure.wanted, failure.observed
    lines = [
        f"{header} (kernel {kernel}) failed",
        textwrap.indent(step.source, "    "),
        f"  request:  {step.op!r}",
        f"  expected: {want}{_kernel_range(step, failure.expected)}",
        f"  got:      {got}",
    ]
    lines += [f"  - {line}" for line in _differences(want, got)]
    if step.number > 1:
        passed = "step 1" if step.number == 2 else f"steps 1-{step.number - 1}"
        lines.append(f"  ({passed} passed)")
    return "\n".join(lines)
