"""Differential checking: a device and its simulated twin, in lockstep."""

from vfio_hil._diff.cases import SLOTS, cleanup_steps, matrix_cases, random_sequence
from vfio_hil._diff.ops import (
    Clear,
    Raise,
    Reopen,
    Reset,
    SetDisIntx,
    SetIrqs,
    Step,
    WriteEventfd,
)
from vfio_hil._diff.runner import DifferentialRun, Disagreement, Observation, Side
from vfio_hil._diff.twin import function_of, running_kernel_profile, sim_twin

__all__ = [
    "SLOTS",
    "Clear",
    "DifferentialRun",
    "Disagreement",
    "Observation",
    "Raise",
    "Reopen",
    "Reset",
    "SetDisIntx",
    "SetIrqs",
    "Side",
    "Step",
    "WriteEventfd",
    "cleanup_steps",
    "function_of",
    "matrix_cases",
    "random_sequence",
    "running_kernel_profile",
    "sim_twin",
]
