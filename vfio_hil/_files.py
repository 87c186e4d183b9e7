"""Files a user hands vfio-hil: regular, bounded, and YAML that cannot explode.

A path given to vfio-hil (a scenario, a counterexample to replay) may name a
FIFO, ``/dev/zero``, a directory, a huge file or a YAML alias bomb.  Each is
refused here, before it can block or grow, with a ``BadFileError``: one line
naming the path and what was expected.  The type is stat-ed before the file is
opened, so a device node is never opened (opening one can have effects), and
the open is non-blocking, so a FIFO swapped in after the stat cannot block.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import yaml

from vfio_hil._errors import VfioHilError

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "BadFileError",
    "check_yaml",
    "read_head",
    "read_text",
]

# Ample: the largest shipped scenario is ~3 KiB; a counterexample step ~100 bytes.
MAX_FILE_BYTES = 1 << 20
# Values once aliases are expanded: a shipped scenario has at most 365; a nine-line
# billion-laughs bomb has 10**9, and building them took 44 s and 2.25 GB.
MAX_YAML_NODES = 100_000
# Nesting: the shipped scenarios need 6 levels; the YAML composer recurses per level.
MAX_YAML_DEPTH = 64

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
# libyaml first, so the check costs little next to the real (pure Python) parse.
_EVENT_LOADERS: tuple[type[yaml.SafeLoader | yaml.CSafeLoader], ...] = (
    (yaml.CSafeLoader, yaml.SafeLoader) if yaml.__with_libyaml__ else (yaml.SafeLoader,)
)
_OPENS = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSES = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


class BadFileError(VfioHilError):
    """An input vfio-hil will not read: ``path[:line]: problem``, on one line."""

    def __init__(self, path: str, problem: str, line: int = 0) -> None:
        super().__init__(f"{path}:{line}: {problem}" if line else f"{path}: {problem}")
        self.path = path
        self.line = line
        self.problem = problem


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}".replace(".0 ", " ")
    return f"{n} bytes"


def _not_regular(mode: int) -> str | None:
    """What a file that is not a regular one is, in words."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def _open_regular(path: Path, shown: str, what: str) -> BinaryIO:
    try:
        kind = _not_regular(os.stat(path).st_mode)
        if kind is None:
            fd = os.open(path, _OPEN_FLAGS)
            kind = _not_regular(os.fstat(fd).st_mode)  # swapped since the stat?
            if kind is None:
                return open(fd, "rb")
            os.close(fd)
    except FileNotFoundError:
        raise BadFileError(shown, f"no such file: expected {what}") from None
    except OSError as err:
        raise BadFileError(shown, f"cannot open it ({err.strerror}): expected {what}") from None
    raise BadFileError(shown, f"is {kind}, not a regular file: expected {what}")


def read_text(
    path: Path, shown: str | None = None, what: str = "a scenario file", limit: int = MAX_FILE_BYTES
) -> str:
    """The UTF-8 text of the regular file ``path``, at most ``limit`` bytes.

    Errors name the file as ``shown`` (default: the path) and say it should
    be ``what``.
    """
    where = shown or str(path)
    with _open_regular(path, where, what) as file:
        # One byte past the limit says "too big": st_size is 0 for /proc files.
        data = file.read(limit + 1)
        if len(data) > limit:
            size = max(len(data), os.fstat(file.fileno()).st_size)
            raise BadFileError(where, f"is {_size(size)}; {what} is at most {_size(limit)}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise BadFileError(where, f"is not UTF-8 text: expected {what}", line) from None


def read_head(path: Path, size: int) -> bytes:
    """Up to ``size`` bytes from the start of ``path``, or ``b""`` unless it is
    a readable regular file: for telling what a file is, so it never fails."""
    try:
        with _open_regular(path, str(path), "a file") as file:
            return file.read(size)
    except (BadFileError, OSError):
        return b""


def check_yaml(text: str, shown: str) -> None:
    """Refuse YAML that expands past ``MAX_YAML_NODES`` values or nests past
    ``MAX_YAML_DEPTH``; errors name ``shown`` and the line.

    It walks the parser's events, building nothing.  A syntax error is left
    for the caller's own parse to report.
    """
    for loader in _EVENT_LOADERS:
        try:
            _walk(yaml.parse(text, Loader=loader), shown)
            return
        except yaml.YAMLError:
            continue  # libyaml stops at 1000 levels: the Python parser does not


def _walk(events: Iterator[yaml.Event], shown: str) -> None:
    """Count values as the composer would build them: an alias adds the size
    of its anchor's node, known once that node has ended."""
    sizes: dict[str, int] = {}  # anchor -> values in its node, aliases expanded
    inside: list[tuple[str | None, int]] = []  # open collections: anchor, count before
    count = 0
    for event in events:
        mark = event.start_mark
        line = mark.line + 1 if mark is not None else 0
        if isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for anchor, _ in inside):
                raise BadFileError(
                    shown, f"alias *{event.anchor} is inside its own anchor: a loop", line
                )
            if event.anchor not in sizes:
                return  # undefined: the parse reports it
            count += sizes[event.anchor]
            if count > MAX_YAML_NODES:
                raise BadFileError(
                    shown,
                    f"aliases expand the YAML past {MAX_YAML_NODES} values (an alias bomb?):"
                    " write the values out",
                    line,
                )
        elif isinstance(event, yaml.NodeEvent):  # a scalar or a collection's start
            count += 1
            if count > MAX_YAML_NODES:
                raise BadFileError(
                    shown, f"has more than {MAX_YAML_NODES} YAML values: split it up", line
                )
            if isinstance(event, _OPENS):
                inside.append((event.anchor, count - 1))
                if len(inside) > MAX_YAML_DEPTH:
                    raise BadFileError(shown, f"nests more than {MAX_YAML_DEPTH} levels deep", line)
            elif event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, _CLOSES):
            anchor, before = inside.pop()
            if anchor is not None:
                sizes[anchor] = count - before
        elif isinstance(event, yaml.DocumentStartEvent):
            sizes.clear()  # anchors are per document
