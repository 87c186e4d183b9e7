"""The lockstep engine: a device and its simulated twin, stepped together.

``steps`` is the step vocabulary (a leaf), ``timing`` the one late-signal
rule and reading policy, ``twin`` the one twin builder, ``engine`` the
sides, the run and what they observe.  The differential check, the scenario
player, the fuzzer, the C reproducer and the plugin's model all use these.
"""

from vfio_hil._lockstep.engine import (
    Disagreement,
    Lockstep,
    Observation,
    Played,
    Side,
    closed_fd_number,
    side_of,
)
from vfio_hil._lockstep.steps import (
    COMMAND_STEPS,
    BarWrite,
    Clear,
    FdRef,
    FdResolver,
    GetIrqInfo,
    PendEventfd,
    Raise,
    Reopen,
    Reset,
    SetCommand,
    SetDisIntx,
    SetIrqs,
    Step,
    WriteEventfd,
)
from vfio_hil._lockstep.timing import LateSignals, Timing, late_steps
from vfio_hil._lockstep.twin import function_of, irq_counts, twin_of

__all__ = [
    "COMMAND_STEPS",
    "BarWrite",
    "Clear",
    "Disagreement",
    "FdRef",
    "FdResolver",
    "GetIrqInfo",
    "LateSignals",
    "Lockstep",
    "Observation",
    "PendEventfd",
    "Played",
    "Raise",
    "Reopen",
    "Reset",
    "SetCommand",
    "SetDisIntx",
    "SetIrqs",
    "Side",
    "Step",
    "Timing",
    "WriteEventfd",
    "closed_fd_number",
    "function_of",
    "irq_counts",
    "late_steps",
    "side_of",
    "twin_of",
]
