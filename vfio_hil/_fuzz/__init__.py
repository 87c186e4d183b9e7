"""Fuzzing internals: request classes, the lockstep run, counterexample export,
behaviour mutants, the mutant bench and the command-line entry points.

The public faces are ``vfio_hil.strategies`` (hypothesis strategies for
SET_IRQS requests) and ``vfio_hil.stateful`` (the differential state machine).
"""
