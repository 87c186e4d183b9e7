"""Which files are scenarios: opt-in by a marker key, never by name or place.

A ``.yaml``/``.yml`` file is a scenario when a top-level line in its first
``MARKER_WINDOW`` bytes gives the key ``vfio-hil`` a scalar value
(``vfio-hil: scenario/1``).  Any other YAML
file, wherever it is (``cloudbuild.yaml``, a GitLab CI file with a job named
``vfio-hil``, ``scenarios/foo.yaml`` in a project that is not about
vfio-hil), is left alone: the plugin is installed for every pytest run on the
machine.  Any scalar value claims the file, so an unknown version or a typo
(``scenario/2``, ``scenarios/1``) is a clear error from the loader rather
than a silently skipped file.
"""

from __future__ import annotations

import re
from pathlib import Path

from vfio_hil._files import read_head

__all__ = ["MARKER", "MARKER_KEY", "MARKER_LINE", "MARKER_WINDOW", "SUFFIXES", "is_scenario_file"]

SUFFIXES = (".yaml", ".yml")
MARKER_KEY = "vfio-hil"
MARKER = "scenario/1"  # the format's name and version
MARKER_LINE = f"{MARKER_KEY}: {MARKER}"
# Only this much of a file is read to tell; the marker belongs on line 1.
MARKER_WINDOW = 64 * 1024

# A top-level key starts in column 0; it may be quoted, and the file may
# start with a byte-order mark.  Its value is a scalar on the same line
# (scenario/1, or a typo of it, which the loader then refuses by name): a
# key "vfio-hil" holding a mapping or a list (a CI job of that name, block
# or flow style) is somebody else's file.
_MARKER = re.compile(
    rb"^(?:\xef\xbb\xbf)?([\"']?)vfio-hil\1[ \t]*:[ \t]+[^\s#{\[|>&*!]", re.MULTILINE
)


def is_scenario_file(path: Path, root: Path | None = None) -> bool:
    """Is ``path`` a scenario file?  (``root`` is unused: where a file lives
    does not matter; it stays for ``collect_file``'s call.)"""
    del root
    if path.suffix not in SUFFIXES:
        return False
    return _MARKER.search(read_head(path, MARKER_WINDOW)) is not None
