"""Hypothesis settings profiles for the differential machine: ci, dev, fuzz.

* ``ci``: bounded and deterministic (``derandomize=True``): the same
  examples on every run and no database (hypothesis refuses a database
  with ``derandomize``).  The state machine runs it from ``CI_SEED``
  (``vfio_hil.stateful.make_machine``), not from hypothesis' derandomized
  seed, which is a digest of the machine class's source text: any edit to
  the class would reshuffle every example.
* ``dev``: random, a few times longer, with a database so a failure found
  once is tried first next time.
* ``fuzz``: long runs; stop it with Ctrl-C, failures are kept in the database.

Every profile has ``deadline=None`` (a real device's steps vary a lot in
time) and suppresses the too-slow health checks.  The database of ``dev``
and ``fuzz`` is ``VFIO_HIL_FUZZ_DB`` when set, else hypothesis' default
(``.hypothesis/`` or ``HYPOTHESIS_STORAGE_DIRECTORY``).

They are registered with hypothesis as ``vfio-hil-ci``, ``vfio-hil-dev`` and
``vfio-hil-fuzz``, and as plain ``dev`` and ``fuzz`` unless a profile of that
name already exists (a project's own profiles are never replaced).  Plain
``ci`` is hypothesis' own profile, which it loads by itself on a CI machine:
taking it over would change every hypothesis test there, so it is left alone.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import InvalidArgument

__all__ = [
    "CI_SEED",
    "DB_ENV",
    "PROFILE_NAMES",
    "default_seed",
    "fuzz_settings",
    "register_profiles",
]

DB_ENV = "VFIO_HIL_FUZZ_DB"
CI_SEED = 0  # the seed of every derandomized run that names none
PROFILE_NAMES = ("ci", "dev", "fuzz")
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
_SHAPE = {
    # name: (max_examples, stateful_step_count, derandomize)
    "ci": (500, 40, True),
    "dev": (1000, 40, False),
    "fuzz": (100_000, 80, False),
}


def fuzz_settings(name: str = "ci") -> settings:
    """The settings of profile ``name``, with the database as the environment says now."""
    if name not in _SHAPE:
        raise InvalidArgument(f"unknown profile {name!r}: use one of {', '.join(PROFILE_NAMES)}")
    max_examples, steps, derandomize = _SHAPE[name]
    chosen = settings(
        max_examples=max_examples,
        stateful_step_count=steps,
        derandomize=derandomize,  # True also means database=None
        deadline=None,
        suppress_health_check=_QUIET,
        print_blob=not derandomize,
    )
    path = os.environ.get(DB_ENV)
    if path and not derandomize:
        return settings(chosen, database=DirectoryBasedExampleDatabase(path))
    # Unset, the database is hypothesis' default, opened only once a test uses
    # it: building (and registering) a profile touches no disk.
    return chosen


def default_seed(chosen: settings) -> int | None:
    """The seed a run with these settings uses when it names none.

    ``CI_SEED`` when ``derandomize`` is set (so the sample is a function of a
    documented number, not of source text); None (random) otherwise.
    """
    return CI_SEED if chosen.derandomize else None


def _exists(name: str) -> bool:
    try:
        settings.get_profile(name)
    except InvalidArgument:
        return False
    return True


def register_profiles() -> None:
    """Register the three profiles (see the module docstring for the names).

    Only registers, never loads one; a second call changes nothing.
    """
    for name in PROFILE_NAMES:
        if _exists(f"vfio-hil-{name}"):
            continue
        profile = fuzz_settings(name)
        settings.register_profile(f"vfio-hil-{name}", profile)
        if name != "ci" and not _exists(name):  # "ci" is hypothesis' own
            settings.register_profile(name, profile)
