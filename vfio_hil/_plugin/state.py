"""Session state the plugin keeps in ``config.stash`` (never on ``config``)."""

from __future__ import annotations

import pytest

from vfio_hil._targets import Target

__all__ = ["TARGETS", "targets_of"]

# The targets this session runs against, resolved once in pytest_configure.
TARGETS = pytest.StashKey[list[Target]]()


def targets_of(config: pytest.Config) -> list[Target]:
    """The session's targets (simulated presets when none were configured)."""
    try:
        return config.stash[TARGETS]
    except KeyError:
        from vfio_hil._targets import targets_from_env

        return targets_from_env()
