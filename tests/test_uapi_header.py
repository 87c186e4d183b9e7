"""``vfio_hil/_uapi.py`` against the real ``<linux/vfio.h>`` / ``<linux/iommufd.h>``.

``tests/c/uapi_probe.c`` is compiled with gcc and prints every constant, struct
size, field offset/size/signedness as ``name value`` lines; this file parses
them and compares them with the ctypes mirrors.  No expected number is written
here: the header is the only source.

Headers checked:

* the system's (Debian bookworm's linux-libc-dev 6.1): the version we target;
* every newer include dir in ``VFIO_HIL_UAPI_INCLUDE`` (``os.pathsep``-separated),
  else every ``${XDG_CACHE_HOME:-~/.cache}/vfio-hil/uapi-headers*/include`` that
  ``tests/c/fetch-headers.sh`` left there.  6.1 has no cdev/iommufd items; those
  are only checked against a newer header.

Size rule (never relaxed silently):

* target (system) header: ``sizeof(ours) == sizeof(header)`` and the alignment
  matches: ``argsz`` is ``sizeof(ours)``, exactly what a 6.1-built VMM sends;
* newer header: our struct must be a *prefix* of the header's (every field we
  mirror at the same offset, size and signedness, with no gap, so the header's
  first ``sizeof(ours)`` bytes are exactly our fields), at least the kernel's
  ``minsz`` (so the kernel accepts ``argsz = sizeof(ours)``), and any growth
  past our size must be listed in ``KNOWN_GROWTH`` after someone read what the
  new tail means.  An unlisted growth fails.
"""

from __future__ import annotations

import ctypes
import enum
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest

from vfio_hil import _uapi as u
from vfio_hil._irq import IrqSet

PROBE_SRC = Path(__file__).parent / "c" / "uapi_probe.c"
FETCH_SCRIPT = "tests/c/fetch-headers.sh"
ENV_INCLUDE = "VFIO_HIL_UAPI_INCLUDE"
INSTALL_HINT = "apt-get install gcc linux-libc-dev"
GCC_TIMEOUT_S = 60
PROBE_TIMEOUT_S = 10

# The field whose end is the kernel's ``minsz`` (``offsetofend(struct, FIELD)``
# in the ioctl handler: vfio_main.c, vfio_pci_core.c, group.c, device_cdev.c,
# iommufd/main.c).  A shorter argsz gets EINVAL.
KERNEL_MINSZ_FIELD = {
    "vfio_group_status": "flags",
    "vfio_device_info": "num_irqs",
    "vfio_region_info": "offset",
    "vfio_irq_info": "count",
    "vfio_irq_set": "count",
    "vfio_device_bind_iommufd": "out_devid",
    "vfio_device_attach_iommufd_pt": "pt_id",
    "iommu_ioas_alloc": "out_ioas_id",
}

# (struct, header size) -> what the header appended past our mirror, and why
# leaving it out is fine.  Sizes come from the headers, not from _uapi.py.
KNOWN_GROWTH = {
    ("vfio_device_info", 24): "u32 pad (6.12 header): tail padding, never read by us",
    ("vfio_device_bind_iommufd", 24): (
        "u64 token_uuid_ptr (7.3 header): read only with VFIO_DEVICE_BIND_FLAG_TOKEN"
    ),
    ("vfio_device_attach_iommufd_pt", 16): (
        "u32 pasid (7.3 header): read only with VFIO_DEVICE_ATTACH_PASID"
    ),
}

# _uapi names that are not header macros but derived from the layout.
DERIVED = {"IRQ_SET_HEADER_SIZE": "flexoffset.vfio_irq_set.data"}


def _constants() -> dict[str, int]:
    return {
        name: value
        for name, value in vars(u).items()
        if name[:1].isupper()
        and isinstance(value, int)
        and not isinstance(value, (bool, enum.Enum))
    }


def _structs() -> dict[str, type[ctypes.Structure]]:
    return {
        name: obj
        for name, obj in vars(u).items()
        if isinstance(obj, type)
        and issubclass(obj, ctypes.Structure)
        and obj.__module__ == u.__name__
    }


CONSTANTS = _constants()
STRUCTS = _structs()


# --- running the probe ----------------------------------------------------------
@dataclass
class Probe:
    """One compile-and-run of the probe against one include dir."""

    label: str
    values: dict[str, int] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def version(self) -> str:
        code = self.values["header.version"]
        return f"{code >> 16}.{(code >> 8) & 0xFF}.{code & 0xFF}"

    @property
    def checked(self) -> set[str]:
        """The _uapi items this header could check."""
        names = set(CONSTANTS) | set(STRUCTS)
        return {n for n in names if n not in self.missing}


def parse_probe(text: str, label: str) -> Probe:
    """``name value`` lines -> Probe; anything else is a probe bug."""
    probe = Probe(label)
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith("missing."):
            probe.missing[name.removeprefix("missing.")] = value
        else:
            probe.values[name] = int(value)
    return probe


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(what: str) -> NoReturn:
    """Missing toolchain: a failure in CI, a skip on a developer machine."""
    message = f"{what}; run `{INSTALL_HINT}`"
    if _in_ci():
        pytest.fail(message)
    pytest.skip(message)


def _newer_include_dirs() -> list[Path]:
    env = os.environ.get(ENV_INCLUDE, "")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vfio-hil"
    found = sorted(cache.glob("uapi-headers*/include"))
    return [d for d in found if (d / "linux" / "vfio.h").is_file()]


NEWER = _newer_include_dirs()
HEADERS = [pytest.param(None, id="system")] + [
    pytest.param(d, id=d.parent.name if d.name == "include" else d.name) for d in NEWER
]


def _compile_and_run(include: Path | None, workdir: Path) -> Probe:
    gcc = shutil.which("gcc")
    if gcc is None:
        _unavailable("gcc not found")
    if include is not None and not (include / "linux" / "vfio.h").is_file():
        pytest.fail(
            f"{include} has no linux/vfio.h ({ENV_INCLUDE}={os.environ.get(ENV_INCLUDE, '')!r});"
            f" run {FETCH_SCRIPT} or point {ENV_INCLUDE} at a dir holding linux/vfio.h"
        )
    exe = workdir / "uapi_probe"
    cmd = [gcc, "-std=gnu11", "-Wall", "-o", str(exe), str(PROBE_SRC)]
    if include is not None:
        cmd[1:1] = ["-I", str(include)]
    built = subprocess.run(cmd, capture_output=True, text=True, timeout=GCC_TIMEOUT_S)
    if built.returncode != 0:
        if include is None and "vfio.h" in built.stderr and "No such file" in built.stderr:
            _unavailable("the system has no <linux/vfio.h>")
        pytest.fail(f"probe did not compile:\n{' '.join(cmd)}\n{built.stderr}")
    ran = subprocess.run([str(exe)], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    assert ran.returncode == 0, ran.stderr
    return parse_probe(ran.stdout, "system" if include is None else str(include))


@pytest.fixture(scope="session")
def run_probe(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path | None], Probe]:
    """Compile once per include dir per session."""
    cache: dict[Path | None, Probe] = {}

    def run(include: Path | None) -> Probe:
        if include not in cache:
            cache[include] = _compile_and_run(include, tmp_path_factory.mktemp("probe"))
        return cache[include]

    return run


@pytest.fixture(params=HEADERS)
def probe(request: pytest.FixtureRequest, run_probe: Callable[[Path | None], Probe]) -> Probe:
    return run_probe(request.param)


# --- ctypes side ----------------------------------------------------------------
def _is_signed(ctype: type) -> bool:
    code = getattr(ctype, "_type_", "")
    return isinstance(code, str) and code in "bhilq"


def _our_fields(cls: type[ctypes.Structure]) -> Iterator[tuple[str, int, int, bool]]:
    """(name, offset, size, signed) of each mirrored field."""
    for spec in cls._fields_:
        name, ctype = spec[0], spec[1]
        descr = getattr(cls, name)
        yield name, descr.offset, descr.size, _is_signed(ctype)


def _is_target(probe: Probe) -> bool:
    return probe.label == "system"


# --- the checks -----------------------------------------------------------------
def test_constants_match_header(probe: Probe) -> None:
    wrong, unknown = [], []
    for name, ours in sorted(CONSTANTS.items()):
        key = DERIVED.get(name, f"const.{name}")
        if key in probe.values:
            if probe.values[key] != ours:
                wrong.append(f"{name}: _uapi {ours:#x}, header {probe.values[key]:#x}")
        elif name not in probe.missing:
            unknown.append(name)
    assert not unknown, f"{PROBE_SRC.name} does not print {unknown}: add them to the probe"
    assert not wrong, f"_uapi.py disagrees with {probe.label} {probe.version}: {wrong}"


def test_probe_prints_nothing_we_lack(probe: Probe) -> None:
    """A stale probe item (renamed or dropped in _uapi.py) must not linger."""
    consts = {k.removeprefix("const.") for k in probe.values if k.startswith("const.")}
    sizes = {k.removeprefix("size.") for k in probe.values if k.startswith("size.")}
    assert consts - set(CONSTANTS) == set()
    assert sizes - set(STRUCTS) == set()
    assert set(probe.missing) - set(CONSTANTS) - set(STRUCTS) == set()


@pytest.mark.parametrize("struct", sorted(STRUCTS))
def test_struct_layout_matches_header(probe: Probe, struct: str) -> None:
    if struct in probe.missing:
        pytest.skip(f"{struct}: {probe.missing[struct]} not in {probe.label} {probe.version}")
    cls = STRUCTS[struct]
    theirs = {k.split(".")[2] for k in probe.values if k.startswith(f"offset.{struct}.")}
    ours = [f[0] for f in _our_fields(cls)]
    assert theirs == set(ours), f"probe prints fields {sorted(theirs)}, _uapi has {ours}"
    end = 0
    for name, offset, size, signed in _our_fields(cls):
        where = f"{struct}.{name} vs {probe.label} {probe.version}"
        assert offset == end, f"{where}: gap before the field (offset {offset}, expected {end})"
        assert offset == probe.values[f"offset.{struct}.{name}"], f"{where}: offset"
        assert size == probe.values[f"fsize.{struct}.{name}"], f"{where}: size"
        assert signed == bool(probe.values[f"signed.{struct}.{name}"]), f"{where}: signedness"
        end = offset + size
    _check_size_rule(probe, struct, cls)


def _check_size_rule(probe: Probe, struct: str, cls: type[ctypes.Structure]) -> None:
    ours, theirs = ctypes.sizeof(cls), probe.values[f"size.{struct}"]
    where = f"{struct} vs {probe.label} {probe.version}"
    minsz_field = KERNEL_MINSZ_FIELD[struct]
    minsz = probe.values[f"offset.{struct}.{minsz_field}"]
    minsz += probe.values[f"fsize.{struct}.{minsz_field}"]
    assert ours >= minsz, f"{where}: {ours} B is below the kernel's minsz {minsz}"
    if _is_target(probe):
        assert ours == theirs, f"{where}: {ours} B, the target header says {theirs} B"
        assert ctypes.alignment(cls) == probe.values[f"align.{struct}"], f"{where}: alignment"
        return
    assert ours <= theirs, f"{where}: ours ({ours} B) is longer than the header's ({theirs} B)"
    if ours < theirs:
        assert (struct, theirs) in KNOWN_GROWTH, (
            f"{where}: the header grew the struct to {theirs} B (ours {ours} B): read the new"
            f" fields and add ({struct!r}, {theirs}) to KNOWN_GROWTH, or extend _uapi.py"
        )


def test_irq_set_packing_matches_header(probe: Probe) -> None:
    """IrqSet.pack() puts each header field where the kernel reads it."""
    req = IrqSet.raw(0x21, 2, 3, 4, b"\x05\x06", argsz=0x77)
    packed = req.pack()
    data_at = probe.values["flexoffset.vfio_irq_set.data"]
    assert packed[data_at:] == b"\x05\x06"
    expected = {"argsz": 0x77, "flags": 0x21, "index": 2, "start": 3, "count": 4}
    for name, value in expected.items():
        at = probe.values[f"offset.vfio_irq_set.{name}"]
        size = probe.values[f"fsize.vfio_irq_set.{name}"]
        assert int.from_bytes(packed[at : at + size], "little") == value, name


def test_every_item_checked_by_some_header(run_probe: Callable[[Path | None], Probe]) -> None:
    """The items 6.1 lacks (cdev, iommufd) must be checked against a newer header."""
    probes = [run_probe(None)] + [run_probe(d) for d in NEWER]
    unchecked = (set(CONSTANTS) | set(STRUCTS)) - set().union(*(p.checked for p in probes))
    seen = ", ".join(f"{p.label} {p.version}" for p in probes)
    if unchecked and not NEWER:
        pytest.skip(
            f"not in the system header, so unchecked: {sorted(unchecked)}; run {FETCH_SCRIPT}"
            f" or set {ENV_INCLUDE} to check them against a newer header"
        )
    assert not unchecked, f"no header checks {sorted(unchecked)} (headers: {seen})"


def test_parse_probe_reads_name_value_lines() -> None:
    probe = parse_probe("header.version 393472\nconst.X 15\nmissing.Y Z\n", "t")
    assert probe.values == {"header.version": 393472, "const.X": 15}
    assert probe.missing == {"Y": "Z"}
    assert probe.version == "6.1.0"
