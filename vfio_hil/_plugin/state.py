"""Session state the plugin keeps in ``config.stash`` (never on ``config``)."""

from __future__ import annotations

import pytest

from vfio_hil._plugin.targets import TargetInfo, probe
from vfio_hil._targets import Target

__all__ = ["TARGETS", "target_info", "target_infos", "targets_of"]

# The targets this session runs against, resolved once in pytest_configure.
TARGETS = pytest.StashKey[list[Target]]()
# What each target said when it was first opened (probed once, on first use).
INFOS = pytest.StashKey[dict[str, TargetInfo]]()


def targets_of(config: pytest.Config) -> list[Target]:
    """The session's targets (simulated presets when none were configured)."""
    try:
        return config.stash[TARGETS]
    except KeyError:
        from vfio_hil._targets import targets_from_env

        return targets_from_env()


def target_infos(config: pytest.Config) -> dict[str, TargetInfo]:
    """Every target's ``TargetInfo``, probing them on first use."""
    if INFOS not in config.stash:
        config.stash[INFOS] = {t.spec: probe(t) for t in targets_of(config)}
    return config.stash[INFOS]


def target_info(config: pytest.Config, target: Target) -> TargetInfo:
    """``target``'s info (probed now if the session did not know it)."""
    infos = target_infos(config)
    if target.spec not in infos:
        infos[target.spec] = probe(target)
    return infos[target.spec]
