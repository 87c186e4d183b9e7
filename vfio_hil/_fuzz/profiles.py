"""Hypothesis settings profiles for the differential machine: ci, dev, fuzz.

* ``ci``: bounded and deterministic (``derandomize=True``): the same
  examples on every run and no database (hypothesis refuses a database
  with ``derandomize``).
* ``dev``: random, a few times longer, with a database so a failure found
  once is tried first next time.
* ``fuzz``: long runs; stop it with Ctrl-C, failures are kept in the database.

Every profile has ``deadline=None`` (a real device's steps vary a lot in
time) and suppresses the too-slow health checks.  The database of ``dev``
and ``fuzz`` is ``VFIO_HIL_FUZZ_DB`` when set, else hypothesis' default
(``.hypothesis/`` or ``HYPOTHESIS_STORAGE_DIRECTORY``).

They are registered with hypothesis as ``vfio-hil-ci``, ``vfio-hil-dev`` and
``vfio-hil-fuzz``, and as plain ``ci``, ``dev`` and ``fuzz`` unless a profile
of that name already exists (a project's own profiles are never replaced).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase
from hypothesis.errors import InvalidArgument

__all__ = ["DB_ENV", "PROFILE_NAMES", "fuzz_settings", "register_profiles"]

DB_ENV = "VFIO_HIL_FUZZ_DB"
PROFILE_NAMES = ("ci", "dev", "fuzz")
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
_SHAPE = {
    # name: (max_examples, stateful_step_count, derandomize)
    "ci": (500, 40, True),
    "dev": (1000, 40, False),
    "fuzz": (100_000, 80, False),
}


def _database(name: str) -> ExampleDatabase | None:
    if name == "ci":
        return None  # derandomize=True: hypothesis allows no database
    path = os.environ.get(DB_ENV)
    if path:
        return DirectoryBasedExampleDatabase(path)
    default = settings.default
    return default.database if default is not None else None


def fuzz_settings(name: str = "ci") -> settings:
    """The settings of profile ``name``, with the database as the environment says now."""
    if name not in _SHAPE:
        raise InvalidArgument(f"unknown profile {name!r}: use one of {', '.join(PROFILE_NAMES)}")
    max_examples, steps, derandomize = _SHAPE[name]
    return settings(
        max_examples=max_examples,
        stateful_step_count=steps,
        derandomize=derandomize,
        deadline=None,
        database=_database(name),
        suppress_health_check=_QUIET,
        print_blob=not derandomize,
    )


def _exists(name: str) -> bool:
    try:
        settings.get_profile(name)
    except InvalidArgument:
        return False
    return True


def register_profiles() -> None:
    """Register the three profiles (see the module docstring for the names)."""
    for name in PROFILE_NAMES:
        profile = fuzz_settings(name)
        settings.register_profile(f"vfio-hil-{name}", profile)
        if not _exists(name):
            settings.register_profile(name, profile)
