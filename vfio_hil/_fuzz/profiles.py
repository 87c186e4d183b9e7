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
``VFIO_HIL_FUZZ_DB_SHARED`` adds read-only databases that a fleet shares
(``fuzz_database``): what other runs found is replayed, nothing is written
back.

They are registered with hypothesis as ``vfio-hil-ci``, ``vfio-hil-dev`` and
``vfio-hil-fuzz``, and as plain ``dev`` and ``fuzz`` unless a profile of that
name already exists (a project's own profiles are never replaced).  Plain
``ci`` is hypothesis' own profile, which it loads by itself on a CI machine:
taking it over would change every hypothesis test there, so it is left alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis.configuration import storage_directory
from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    ExampleDatabase,
    GitHubArtifactDatabase,
    MultiplexedDatabase,
    ReadOnlyDatabase,
)
from hypothesis.errors import InvalidArgument

from vfio_hil._errors import VfioHilError

__all__ = [
    "CI_SEED",
    "DB_ENV",
    "PROFILE_NAMES",
    "SHARED_ARTIFACT",
    "SHARED_DB_ENV",
    "default_seed",
    "fuzz_database",
    "fuzz_settings",
    "register_profiles",
]

DB_ENV = "VFIO_HIL_FUZZ_DB"
SHARED_DB_ENV = "VFIO_HIL_FUZZ_DB_SHARED"
SHARED_ARTIFACT = "vfio-hil-fuzz-db"  # github:OWNER/REPO without /ARTIFACT reads this one
CI_SEED = 0  # the seed of every derandomized run that names none
PROFILE_NAMES = ("ci", "dev", "fuzz")
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
_SHAPE = {
    # name: (max_examples, stateful_step_count, derandomize)
    "ci": (500, 40, True),
    "dev": (1000, 40, False),
    "fuzz": (100_000, 80, False),
}
# GitHub's rules: owner 1-39 of [A-Za-z0-9-], repository [A-Za-z0-9._-], and
# artifact names without " : < > | * ? \\ / or line breaks.
_GITHUB = re.compile(
    r"github:(?P<owner>[A-Za-z0-9][A-Za-z0-9-]{0,38})/(?P<repo>[A-Za-z0-9._-]{1,100})"
    r"(?:/(?P<artifact>[^\"\\:<>|*?/\r\n]+))?"
)


def _artifact_cache(artifact: str) -> Path:
    """Where hypothesis itself caches a downloaded artifact (``.hypothesis/github-artifacts/``).

    Passed as ``path``: without one, GitHubArtifactDatabase's constructor
    claims the storage directory, which hypothesis (6.100 on) warns about
    while pytest loads plugins, and profiles are built then.
    """
    try:
        found: Any = storage_directory("github-artifacts", artifact, intent_to_write=False)
    except TypeError:  # an older hypothesis: no such check, no such argument
        found = storage_directory("github-artifacts", artifact)
    return Path(getattr(found, "path", found))


def _shared(source: str) -> ExampleDatabase:
    """One entry of ``VFIO_HIL_FUZZ_DB_SHARED`` as a read-only database."""
    if source.startswith("github:"):
        found = _GITHUB.fullmatch(source)
        if not found:
            raise VfioHilError(
                f"{SHARED_DB_ENV}: {source!r} is not github:OWNER/REPO[/ARTIFACT]",
                f"e.g. github:octo/vfio-tests/{SHARED_ARTIFACT}",
            )
        artifact = found["artifact"] or SHARED_ARTIFACT
        shared: ExampleDatabase = GitHubArtifactDatabase(
            found["owner"], found["repo"], artifact_name=artifact, path=_artifact_cache(artifact)
        )
    elif Path(source).is_dir():
        shared = DirectoryBasedExampleDatabase(source)
    else:
        # A typo would otherwise share nothing, silently, for a whole campaign.
        raise VfioHilError(
            f"{SHARED_DB_ENV}: {source!r} is neither github:OWNER/REPO[/ARTIFACT] "
            "nor an existing directory",
            "create the directory first (an empty one shares nothing yet)",
        )
    return ReadOnlyDatabase(shared)


def fuzz_database(
    environ: Mapping[str, str] | None = None, *, probe: bool = True
) -> ExampleDatabase | None:
    """The example database of ``dev`` and ``fuzz`` as ``environ`` (default: the
    process environment) says; None when it says nothing (hypothesis' default).

    ``VFIO_HIL_FUZZ_DB=DIR``: a directory read and written (hypothesis'
    ``DirectoryBasedExampleDatabase``).  ``VFIO_HIL_FUZZ_DB_SHARED=SOURCE[,SOURCE]``:
    databases only read, each ``github:OWNER/REPO[/ARTIFACT]`` (the latest
    GitHub Actions artifact of that name, default ``vfio-hil-fuzz-db``,
    through ``GitHubArtifactDatabase``; it reads ``GITHUB_TOKEN`` itself) or
    a directory; with them the database is a ``MultiplexedDatabase`` of the
    local one (``VFIO_HIL_FUZZ_DB``, else hypothesis' default) and each shared
    one in a ``ReadOnlyDatabase``.  Raises ``VfioHilError`` for a bad value:
    with ``probe`` (a run is about to start) also for a ``VFIO_HIL_FUZZ_DB``
    that cannot be created and written, whose failures would be lost.
    """
    env = os.environ if environ is None else environ
    path = env.get(DB_ENV, "")
    if path and Path(path).exists() and not Path(path).is_dir():
        raise VfioHilError(f"{DB_ENV}: {path} is not a directory", "name a directory")
    if path and probe:
        from vfio_hil._fuzz.context import check_out_dir  # the heavy part of _fuzz, lazily

        check_out_dir(Path(path), DB_ENV)
    sources = [item.strip() for item in env.get(SHARED_DB_ENV, "").split(",") if item.strip()]
    local: ExampleDatabase | None = DirectoryBasedExampleDatabase(path) if path else None
    if not sources:
        return local
    if local is None:
        local = settings().database  # hypothesis' default (the loaded profile's), as without
    shared = [_shared(source) for source in sources]
    return MultiplexedDatabase(*([local] if local is not None else []), *shared)


def fuzz_settings(name: str = "ci") -> settings:
    """The settings of profile ``name``, with the database as the environment says
    now (``fuzz_database``; a bad value raises ``VfioHilError``)."""
    return _profile(name, probe=True)


def _profile(name: str, *, probe: bool) -> settings:
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
    database = None if derandomize else fuzz_database(probe=probe)
    if database is not None:
        return settings(chosen, database=database)
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

    Only registers, never loads one; a second call changes nothing.  It runs
    at import, so it touches no disk: a run checks its database when it starts.
    """
    for name in PROFILE_NAMES:
        if _exists(f"vfio-hil-{name}"):
            continue
        profile = _profile(name, probe=False)
        settings.register_profile(f"vfio-hil-{name}", profile)
        if name != "ci" and not _exists(name):  # "ci" is hypothesis' own
            settings.register_profile(name, profile)
