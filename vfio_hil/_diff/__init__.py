"""Differential checking: matrix cases and seeded sequences on a device and its twin.

The lockstep engine itself is ``vfio_hil._lockstep``.
"""

from vfio_hil._diff.cases import SLOTS, cleanup_steps, matrix_cases, random_sequence
from vfio_hil._diff.check import DiffReport, run_differential

__all__ = [
    "SLOTS",
    "DiffReport",
    "cleanup_steps",
    "matrix_cases",
    "random_sequence",
    "run_differential",
]
