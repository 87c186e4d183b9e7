"""``vfio-hil selftests build``: tools/testing/selftests/vfio against its tree's headers.

The tree is the one the lab kernel is built from (``_lab.build._source_tree``:
Debian's ``linux-source-X.Y`` through the private apt setup, or a given
path); nothing is written into it.  Under ``<cache>/selftests/<upstream>/``:
``kobj/usr/include`` (``make headers O=kobj``: headers_install would need rsync), ``shim/`` (what
vfio-hil adds, see below), ``bin/`` (the selftests' ``O=``), ``build.log`` and
``manifest.json`` (the binaries and how each picks its IOMMU mode), written
last: a build whose manifest matches the tree and the shim is reused as is.

What vfio-hil adds, only through the selftests' own make variables:

- ``shim/mode.o`` (``USERLDFLAGS``): a constructor that sets
  ``default_iommu_mode`` from ``VFIO_HIL_SELFTESTS_IOMMU_MODE``.  lib/iommu.c
  hard-wires iommufd as the default, which the tests without an IOMMU-mode
  variant (vfio_pci_device_test, ...) use; this drives them in every mode.
- ``shim/calloc_assert.h`` (``EXTRA_CFLAGS=-include``), only when the tree
  calls ``calloc_assert()`` and defines it nowhere (Debian's 7.2 tarball).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from vfio_hil._lab._util import LabError, log

__all__ = [
    "MANIFEST",
    "MODE_ENV",
    "SelftestsBuild",
    "build_selftests",
    "find_build",
    "needs_calloc_assert",
]

MODE_ENV = "VFIO_HIL_SELFTESTS_IOMMU_MODE"
UUID_HEADER = Path("/usr/include/uuid/uuid.h")
MANIFEST = "manifest.json"
SUBDIR = Path("tools/testing/selftests/vfio")
HEADERS_TIMEOUT_S = 900.0
MAKE_TIMEOUT_S = 900.0

MODE_SHIM = f"""\
/* vfio-hil: lib/iommu.c hard-wires iommufd as default_iommu_mode; let the
 * environment choose it, so the tests without an IOMMU-mode variant run in
 * every mode. */
#include <stdlib.h>

extern const char *default_iommu_mode;

__attribute__((constructor)) static void vfio_hil_iommu_mode(void)
{{
	const char *mode = getenv("{MODE_ENV}");

	if (mode && *mode)
		default_iommu_mode = mode;
}}
"""

CALLOC_SHIM = """\
/* vfio-hil: this tree's lib/vfio_pci_device.c calls calloc_assert(), which it
 * defines nowhere; the same as calloc() plus VFIO_ASSERT_NOT_NULL(). */
#include <stdio.h>
#include <stdlib.h>

static inline void *calloc_assert(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb, size);

	if (!p) {
		fprintf(stderr, "calloc(%zu, %zu) failed\\n", nmemb, size);
		exit(1); /* KSFT_FAIL */
	}
	return p;
}
"""


@dataclass(frozen=True)
class SelftestsBuild:
    root: Path  # <cache>/selftests/<upstream>
    upstream: str
    provenance: str
    binaries: dict[str, str]  # name -> how it picks its mode (modes.MODE_KINDS)
    workarounds: tuple[str, ...]
    seconds: float = 0.0
    rebuilt: bool = False

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"


_DEFINES = re.compile(r"(#\s*define\s+calloc_assert\b|\bcalloc_assert\s*\([^;{)]*\)\s*\{)")


def needs_calloc_assert(vfio_dir: Path) -> bool:
    """Whether the selftests call ``calloc_assert()`` and define it nowhere."""
    texts = [p.read_text(errors="replace") for p in sorted(vfio_dir.rglob("*.[ch]"))]
    used = any(re.search(r"\bcalloc_assert\s*\(", t) for t in texts)
    return used and not any(_DEFINES.search(t) for t in texts)


def mode_kind(source: str) -> str:
    """How a selftest's source picks its IOMMU mode (see ``modes.MODE_KINDS``)."""
    if "FIXTURE_VARIANT_ADD_ALL_IOMMU_MODES" in source:
        return "variant"  # each fixture variant names its mode
    if "default_iommu_mode" in source:
        return "default"  # lib/iommu.c's default: set through MODE_ENV
    if "/dev/iommu" in source:
        return "iommufd"  # opens the cdev and iommufd itself
    return "none"


def _run(argv: list[str], what: str, timeout: float, log_path: Path) -> None:
    with log_path.open("a") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        try:
            proc = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False
            )
        except FileNotFoundError:
            raise LabError(f"{argv[0]} not found ({what}): apt-get install {argv[0]}") from None
        except subprocess.TimeoutExpired:
            raise LabError(f"{what} took longer than {timeout:.0f} s (log: {log_path})") from None
    if proc.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
        raise LabError(
            f"{what} failed (exit {proc.returncode}); its last lines:\n{tail}\nfull log: {log_path}"
        )


def _digest(tree: Path, shims: dict[str, str]) -> str:
    vfio = tree / SUBDIR
    parts = [str(tree), *(f"{k}\0{v}" for k, v in sorted(shims.items()))]
    parts += [
        f"{p.relative_to(vfio)}:{p.stat().st_mtime_ns}"
        for p in sorted(vfio.rglob("*"))
        if p.is_file()
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def load_dir(root: Path) -> SelftestsBuild | None:
    try:
        data = json.loads((root / MANIFEST).read_text())
        build = SelftestsBuild(
            root=root,
            upstream=str(data["upstream"]),
            provenance=str(data["provenance"]),
            binaries={str(k): str(v) for k, v in data["binaries"].items()},
            workarounds=tuple(data["workarounds"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not all((build.bin_dir / b).is_file() for b in build.binaries):
        return None
    return build


def find_build(cache: Path, upstream: str | None = None) -> SelftestsBuild | None:
    """The newest (or the ``upstream``) selftests build in the cache, or None."""
    from vfio_hil._lab.kernels import release_key

    base = cache / "selftests"
    names = (
        sorted((p.name for p in base.glob("*") if p.is_dir()), key=release_key)
        if base.is_dir()
        else []
    )
    for name in reversed(names):
        if upstream is None or name == upstream:
            build = load_dir(base / name)
            if build is not None:
                return build
    return None


def build_selftests(cache: Path, source: str) -> SelftestsBuild:
    """Build (or reuse) the VFIO selftests of ``source`` (a series or a tree's path)."""
    from vfio_hil._lab.build import _build_lock, _source_tree, check_tools

    check_tools()
    if not UUID_HEADER.is_file():  # lib/libvfio.mk links -luuid
        raise LabError("building the VFIO selftests needs uuid-dev: apt-get install uuid-dev")
    started = time.monotonic()
    tree, upstream, provenance = _source_tree(source, cache / "build", cache)
    vfio = tree / SUBDIR
    if not (vfio / "Makefile").is_file():
        raise LabError(
            f"{tree} has no {SUBDIR}: this kernel ships no VFIO selftests; give a newer tree"
        )
    root = cache / "selftests" / upstream
    shims = {"mode.c": MODE_SHIM}
    workarounds: list[str] = []
    if needs_calloc_assert(vfio):
        shims["calloc_assert.h"] = CALLOC_SHIM
        workarounds.append("calloc_assert() is called and defined nowhere: vfio-hil defines it")
    with _build_lock(root):  # one build per tree at a time; a second one reuses it
        return _build(tree, vfio, root, upstream, provenance, shims, workarounds, started)


def _build(
    tree: Path,
    vfio: Path,
    root: Path,
    upstream: str,
    provenance: str,
    shims: dict[str, str],
    workarounds: list[str],
    started: float,
) -> SelftestsBuild:
    digest = _digest(tree, shims)
    old = load_dir(root)
    if old is not None and json.loads((root / MANIFEST).read_text()).get("digest") == digest:
        return SelftestsBuild(**{**old.__dict__, "seconds": time.monotonic() - started})
    (root / MANIFEST).unlink(missing_ok=True)
    shim = root / "shim"
    shim.mkdir(parents=True, exist_ok=True)
    for name, text in shims.items():
        (shim / name).write_text(text)
    log_path = root / "build.log"
    log_path.write_text(f"# {provenance}\n")
    jobs = f"-j{os.cpu_count() or 1}"
    log(f"selftests: generating {provenance}'s uAPI headers in {root / 'kobj'}")
    _run(
        ["make", "-C", str(tree), f"O={root / 'kobj'}", jobs, "headers"],
        "make headers",
        HEADERS_TIMEOUT_S,
        log_path,
    )
    _run(
        ["gcc", "-O2", "-c", str(shim / "mode.c"), "-o", str(shim / "mode.o")],
        "compiling the mode shim",
        120,
        log_path,
    )
    extra = f"-include {shim / 'calloc_assert.h'}" if "calloc_assert.h" in shims else ""
    for note in workarounds:
        log(f"selftests: working around this tree's build break: {note}")
    log(f"selftests: building {vfio} into {root / 'bin'}")
    make = [
        "make",
        "-C",
        str(vfio),
        f"OUTPUT={root / 'bin'}",
        f"KHDR_INCLUDES=-isystem {root / 'kobj' / 'usr' / 'include'}",
        f"USERLDFLAGS={shim / 'mode.o'}",
        f"EXTRA_CFLAGS={extra}",
        jobs,
    ]
    (root / "bin").mkdir(exist_ok=True)
    _run(make, "building the VFIO selftests", MAKE_TIMEOUT_S, log_path)
    binaries = {
        src.stem: mode_kind(src.read_text(errors="replace"))
        for src in sorted(vfio.glob("*_test.c"))
        if (root / "bin" / src.stem).is_file()
    }
    if not binaries:
        raise LabError(f"the VFIO selftests build made no test binary (log: {log_path})")
    manifest = {
        "upstream": upstream,
        "provenance": provenance,
        "binaries": binaries,
        "workarounds": workarounds,
        "digest": digest,
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return SelftestsBuild(
        root, upstream, provenance, binaries, tuple(workarounds), time.monotonic() - started, True
    )
