"""A private apt configuration for downloading Debian kernel packages.

Everything apt reads or writes (sources, lists, archives, the dpkg status it
resolves against) lives under one directory in the lab cache, so fetching
kernels never touches the host's apt state and works the same on Debian and
Ubuntu hosts. Packages are only downloaded (``apt-get download``), never
installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from vfio_hil._lab._util import LabError, log

DEFAULT_MIRROR = "http://deb.debian.org"
DEFAULT_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")

# Each group is updated and searched on its own, so a search tells which
# suite a package came from (and fetching 6.1 never downloads sid's lists).
SUITE_GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "bookworm": (("debian", "bookworm"), ("debian-security", "bookworm-security")),
    "trixie": (("debian", "trixie"), ("debian-security", "trixie-security")),
    "trixie-backports": (("debian", "trixie-backports"),),
    "sid": (("debian", "sid"),),
}

UPDATE_TIMEOUT_S = 600.0
QUERY_TIMEOUT_S = 120.0
DOWNLOAD_TIMEOUT_S = 1800.0


def mirror() -> str:
    """The Debian mirror base URL (``VFIO_HIL_DEBIAN_MIRROR`` overrides it)."""
    return os.environ.get("VFIO_HIL_DEBIAN_MIRROR", DEFAULT_MIRROR).rstrip("/")


def keyring() -> Path:
    """The keyring that signs the Debian archive (``VFIO_HIL_DEBIAN_KEYRING`` overrides it)."""
    return Path(os.environ.get("VFIO_HIL_DEBIAN_KEYRING", str(DEFAULT_KEYRING)))


def sources_list(group: str, base_url: str, keyring_path: Path) -> str:
    """The ``sources.list`` text for one suite group (one-line format, main only)."""
    try:
        entries = SUITE_GROUPS[group]
    except KeyError:
        raise LabError(f"unknown Debian suite group {group!r}") from None
    return "".join(
        f"deb [arch=amd64 signed-by={keyring_path}] {base_url}/{archive} {suite} main\n"
        for archive, suite in entries
    )


def apt_options(root: Path, *, as_root: bool) -> list[str]:
    """``-o`` options that point every apt path at ``root`` instead of the host's."""
    opts = {
        "Dir::Etc::sourcelist": root / "sources.list",
        "Dir::Etc::sourceparts": root / "sources.list.d",
        "Dir::Etc::preferences": root / "preferences",
        "Dir::Etc::preferencesparts": root / "preferences.d",
        "Dir::State": root / "state",
        "Dir::State::status": root / "state" / "status",
        "Dir::Cache": root / "cache",
        "APT::Architecture": "amd64",
        # Hosts with foreign architectures enabled (i386 on CI runners) would
        # otherwise ask the Debian mirror for lists we do not need.
        "APT::Architectures": "amd64",
        "Acquire::Languages": "none",
    }
    out: list[str] = []
    for key, value in opts.items():
        out += ["-o", f"{key}={value}"]
    if as_root:
        # apt drops to the _apt user for downloads; _apt cannot enter a cache
        # under /root, which only costs a warning but clutters the output.
        out += ["-o", "APT::Sandbox::User=root"]
    return out


_SEARCH_LINE = re.compile(r"^(?P<name>[a-z0-9][a-z0-9+.-]+) - ")


def parse_search_output(text: str) -> list[str]:
    """Package names from ``apt-cache search`` output (``name - description`` lines)."""
    names = []
    for line in text.splitlines():
        m = _SEARCH_LINE.match(line)
        if m:
            names.append(m.group("name"))
    return names


class PrivateApt:
    """apt-get/apt-cache confined to ``<cache>/apt/<group>``."""

    def __init__(self, cache: Path, group: str) -> None:
        self.group = group
        self.root = cache / "apt" / group
        self._apt_get = shutil.which("apt-get")
        self._apt_cache = shutil.which("apt-cache")

    def _tools(self) -> tuple[str, str]:
        if not self._apt_get or not self._apt_cache:
            raise LabError(
                "apt-get not found: the lab downloads Debian kernel packages with apt "
                "(Debian or Ubuntu host). Elsewhere, pass a local kernel instead: "
                "--kernel /path/to/vmlinuz:/path/to/lib/modules/<release>"
            )
        return self._apt_get, self._apt_cache

    def _prepare(self) -> None:
        key = keyring()
        if not key.is_file():
            raise LabError(
                f"Debian archive keyring {key} not found: apt-get install debian-archive-keyring "
                "(or set VFIO_HIL_DEBIAN_KEYRING)"
            )
        for sub in (
            "sources.list.d",
            "preferences.d",
            "state/lists/partial",
            "cache/archives/partial",
        ):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "state" / "status").touch()
        (self.root / "sources.list").write_text(sources_list(self.group, mirror(), key))

    def _options(self) -> list[str]:
        return apt_options(self.root, as_root=os.geteuid() == 0)

    def has_lists(self) -> bool:
        """Whether ``update`` has run at least once for this group."""
        lists = self.root / "state" / "lists"
        return lists.is_dir() and any(p.name.endswith("InRelease") for p in lists.iterdir())

    def update(self) -> None:
        """``apt-get update`` against the private sources (quiet unless it fails)."""
        apt_get, _ = self._tools()
        self._prepare()
        log(f"updating Debian package lists for {self.group} ({mirror()})")
        try:
            proc = subprocess.run(
                [apt_get, *self._options(), "-q", "update"],
                capture_output=True,
                text=True,
                timeout=UPDATE_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise LabError(
                f"apt-get update for {self.group} took longer than {UPDATE_TIMEOUT_S:.0f} s; "
                "is the Debian mirror reachable? (VFIO_HIL_DEBIAN_MIRROR)"
            ) from None
        # apt-get update exits 0 even when a source failed; "W:"/"E:" lines tell.
        failed = [ln for ln in proc.stderr.splitlines() if ln.startswith(("E:", "W:", "Err:"))]
        if proc.returncode != 0 or any(ln.startswith(("E:", "Err:")) for ln in failed):
            detail = "\n".join(failed or proc.stderr.splitlines()[-10:])
            raise LabError(f"apt-get update for {self.group} failed:\n{detail}")

    def search(self, regex: str) -> list[str]:
        """Names of real packages whose name matches ``regex`` (POSIX ERE)."""
        _, apt_cache = self._tools()
        proc = subprocess.run(
            [apt_cache, *self._options(), "search", "--names-only", regex],
            capture_output=True,
            text=True,
            timeout=QUERY_TIMEOUT_S,
            check=False,
        )
        if proc.returncode != 0:
            raise LabError(f"apt-cache search failed for {self.group}: {proc.stderr.strip()}")
        return parse_search_output(proc.stdout)

    def download(self, packages: Sequence[str], dest: Path) -> list[Path]:
        """Download ``packages`` into ``dest``; apt's ``Get:`` lines go to stderr."""
        apt_get, _ = self._tools()
        dest.mkdir(parents=True, exist_ok=True)
        before = set(dest.glob("*.deb"))
        try:
            proc = subprocess.run(
                [apt_get, *self._options(), "download", *packages],
                cwd=dest,
                stdout=sys.stderr,
                stderr=subprocess.PIPE,
                text=True,
                timeout=DOWNLOAD_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise LabError(
                f"downloading {', '.join(packages)} took longer than {DOWNLOAD_TIMEOUT_S:.0f} s"
            ) from None
        if proc.returncode != 0:
            raise LabError(
                f"apt-get download {' '.join(packages)} failed ({self.group}):\n"
                f"{proc.stderr.strip()}\nretry with: vfio-hil lab fetch --refresh"
            )
        debs = sorted(set(dest.glob("*.deb")) - before) or sorted(dest.glob("*.deb"))
        missing = [p for p in packages if not any(d.name.startswith(p + "_") for d in debs)]
        if missing:
            raise LabError(f"apt-get download did not produce {', '.join(missing)}")
        return [d for d in debs if any(d.name.startswith(p + "_") for p in packages)]
