"""Kernel specs, Debian package selection and the kernel cache.

A spec names a kernel: ``6.1`` (bookworm), ``6.12`` (trixie), ``7`` (newest
7.x in sid, else trixie-backports), ``newest`` (newest of any version there),
``all`` (6.1, 6.12 and 7), another ``X.Y`` series, ``iommufd`` (the lab's
own build with every VFIO path, see ``build``), or a local
``VMLINUZ[:MODULES_DIR]``.

Packages are downloaded with a private apt configuration (see ``apt``) and
unpacked with ``dpkg -x`` into ``<cache>/<release>/root``; ``depmod`` then
writes the module indexes the package's postinst would have written. The
cache is ``$VFIO_HIL_CACHE`` or ``${XDG_CACHE_HOME:-~/.cache}/vfio-hil/kernels``.
A resolved kernel is reused without any network access.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from vfio_hil._lab._util import LabError, log
from vfio_hil._lab.apt import PrivateApt
from vfio_hil._lab.build import BUILT_SOURCE, COVERAGE_SOURCE

MANIFEST = "kernel.json"
DEPMOD_TIMEOUT_S = 600.0
DPKG_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class KernelSpec:
    """What the user asked for; ``groups`` are apt suite groups in preference order."""

    label: str
    groups: tuple[str, ...] = ()
    series: tuple[int, ...] = ()
    path: Path | None = None
    modules: Path | None = None

    @property
    def is_local(self) -> bool:
        return self.path is not None


@dataclass(frozen=True)
class Kernel:
    """A kernel ready to boot.

    ``release`` is what ``uname -r`` prints in the guest (``6.1.0-56-amd64``),
    ``upstream`` the upstream version (``6.1.192``). ``modules_dir`` is
    ``<root>/lib/modules/<release>``, so ``modprobe -d <root>`` finds it.
    """

    name: str
    release: str
    upstream: str
    vmlinuz: Path
    modules_dir: Path
    root: Path
    source: str
    packages: tuple[str, ...] = ()

    def describe(self) -> str:
        """``6.1 (6.1.0-56-amd64, upstream 6.1.192, bookworm)``."""
        return f"{self.name} ({self.release}, upstream {self.upstream}, {self.source})"


@dataclass(frozen=True)
class Candidate:
    """The packages that make up one kernel release in one suite group."""

    release: str
    version: tuple[int, ...]
    packages: tuple[str, ...]
    group: str = ""


NAMED_SPECS: dict[str, KernelSpec] = {
    "6.1": KernelSpec("6.1", ("bookworm",), (6, 1)),
    "6.12": KernelSpec("6.12", ("trixie",), (6, 12)),
    "7": KernelSpec("7", ("sid", "trixie-backports"), (7,)),
    "newest": KernelSpec("newest", ("sid", "trixie-backports"), ()),
    # Built here from Debian's linux-source (``build``): IOMMUFD, VFIO_DEVICE_CDEV
    # and VFIO_NOIOMMU, which no Debian kernel has.
    "iommufd": KernelSpec("iommufd", (BUILT_SOURCE,), ()),
    # The same with gcov counters for drivers/vfio and drivers/iommu/iommufd (``gcov``).
    "iommufd-cov": KernelSpec("iommufd-cov", (COVERAGE_SOURCE,), ()),
}
MATRIX = ("6.1", "6.12", "7")
SPEC_FORMS = (
    "6.1, 6.12, 7, newest, all, X.Y, iommufd, iommufd-cov, or a local VMLINUZ[:MODULES_DIR]"
)
_ANY_SERIES_GROUPS = ("sid", "trixie-backports", "trixie", "bookworm")


def parse_spec(text: str) -> list[KernelSpec]:
    """Turn one ``--kernel`` argument into specs (``all`` gives the matrix)."""
    text = text.strip()
    if not text:  # Path("") is the current directory: it "exists"
        raise LabError(f"empty kernel spec: use {SPEC_FORMS}")
    if text == "all":
        return [NAMED_SPECS[name] for name in MATRIX]
    if text in NAMED_SPECS:
        return [NAMED_SPECS[text]]
    if re.fullmatch(r"\d+(\.\d+)?", text):
        series = tuple(int(p) for p in text.split("."))
        return [KernelSpec(text, _ANY_SERIES_GROUPS, series)]
    if "/" in text or Path(text).exists():
        image, sep, modules = text.partition(":")
        return [
            KernelSpec(
                "local",
                path=Path(image).expanduser().absolute(),
                modules=Path(modules).expanduser().absolute() if sep else None,
            )
        ]
    raise LabError(f"unknown kernel spec {text!r}: use {SPEC_FORMS}")


def parse_specs(texts: Iterable[str]) -> list[KernelSpec]:
    """Parse several ``--kernel`` arguments, dropping duplicates, keeping order."""
    out: list[KernelSpec] = []
    for text in texts:
        for spec in parse_spec(text):
            if spec not in out:
                out.append(spec)
    return out


# linux-image-6.1.0-56-amd64[-unsigned], linux-image-6.12.117+deb13-amd64[-unsigned]
_IMAGE = re.compile(
    r"^linux-image-(?P<rel>(?P<ver>\d+\.\d+\.\d+)(?:-(?P<abi>\d+))?(?:\+deb(?P<deb>\d+))?-amd64)"
    r"(?P<unsigned>-unsigned)?$"
)
# Since 7.x Debian splits the image: linux-binary[-unsigned]-<rel> holds vmlinuz,
# linux-modules-<rel> the modules and linux-base-<rel> modules.order/builtin.
_BINARY = re.compile(
    r"^linux-binary(?P<unsigned>-unsigned)?-"
    r"(?P<rel>(?P<ver>\d+\.\d+\.\d+)(?:-(?P<abi>\d+))?(?:\+deb(?P<deb>\d+))?-amd64)$"
)


def release_key(release: str) -> tuple[int, ...]:
    """Sort key of a Debian kernel release: version, then ABI, then ``+debN``.

    >>> release_key("6.1.0-56-amd64") > release_key("6.1.0-9-amd64")
    True
    """
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?(?:-(\d+))?(?:\+deb(\d+))?", release)
    if not m:
        return ()
    return tuple(int(g) if g else 0 for g in m.groups())


def select_newest(names: Iterable[str], series: tuple[int, ...] = ()) -> Candidate | None:
    """Pick the newest amd64 kernel among package names, within ``series``.

    The unsigned variant is preferred (the signature is irrelevant to QEMU's
    direct kernel boot and the unsigned one exists for every split package).
    """
    names = set(names)
    best: dict[str, tuple[bool, tuple[str, ...]]] = {}
    for name in names:
        for pattern in (_IMAGE, _BINARY):
            m = pattern.match(name)
            if not m:
                continue
            rel = m.group("rel")
            ver = tuple(int(p) for p in m.group("ver").split("."))
            if ver[: len(series)] != series:
                continue
            if pattern is _BINARY:
                modules = f"linux-modules-{rel}"
                if modules not in names:
                    continue
                base = f"linux-base-{rel}"
                pkgs: tuple[str, ...] = (name, modules, *((base,) if base in names else ()))
            else:
                pkgs = (name,)
            unsigned = m.group("unsigned") is not None
            if rel not in best or (unsigned and not best[rel][0]):
                best[rel] = (unsigned, pkgs)
    if not best:
        return None
    rel = max(best, key=release_key)
    ver = tuple(int(p) for p in rel.split("-")[0].split("+")[0].split("."))
    return Candidate(rel, ver, best[rel][1])


def upstream_version(deb_version: str) -> str:
    """The upstream part of a Debian package version.

    >>> upstream_version("7.3.4-1~bpo13+1")
    '7.3.4'
    """
    version = deb_version.split(":", 1)[-1]
    return version.rsplit("-", 1)[0] if "-" in version else version


def _numeric_version(release: str) -> str:
    """``6.12.118`` from ``6.12.118+deb13-amd64`` (upstream of a local kernel)."""
    m = re.match(r"\d+\.\d+(?:\.\d+)?", release)
    return m.group(0) if m else release


def bzimage_release(header: bytes) -> str | None:
    """The release string embedded in an x86 bzImage (boot protocol >= 2.00).

    The setup header has ``HdrS`` at 0x202 and, at 0x20e, the offset (minus
    0x200) of a NUL-terminated string that starts with the release.
    """
    if len(header) < 0x210 or header[0x202:0x206] != b"HdrS":
        return None
    offset = int.from_bytes(header[0x20E:0x210], "little") + 0x200
    end = header.find(b"\0", offset)
    if offset >= len(header) or end < 0:
        return None
    text = header[offset:end].decode("ascii", "replace").split()
    return text[0] if text else None


def read_bzimage_release(path: Path) -> str | None:
    """``bzimage_release`` of a file (reads only the first 64 KiB)."""
    with path.open("rb") as f:
        return bzimage_release(f.read(65536))


def kernel_has(kernel: Kernel, symbol: str) -> bool | None:
    """Whether ``kernel`` was built with ``CONFIG_<symbol>`` (=y or =m), from the
    config its packages ship (``boot/config-<release>``; 7.x: in the modules
    directory); None when there is none (a local kernel may have no config)."""
    for config in (
        kernel.root / "boot" / f"config-{kernel.release}",
        kernel.modules_dir / "config",
    ):
        try:
            text = config.read_text()
        except OSError:
            continue
        return re.search(rf"^CONFIG_{symbol}=[ym]$", text, re.M) is not None
    return None


def cache_dir() -> Path:
    """The kernel cache: ``$VFIO_HIL_CACHE`` or ``${XDG_CACHE_HOME:-~/.cache}/vfio-hil/kernels``."""
    if os.environ.get("VFIO_HIL_CACHE"):
        return Path(os.environ["VFIO_HIL_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "vfio-hil" / "kernels"


def _manifest_kernel(path: Path) -> Kernel | None:
    try:
        data = json.loads(path.read_text())
        return Kernel(
            name=data["name"],
            release=data["release"],
            upstream=data["upstream"],
            vmlinuz=Path(data["vmlinuz"]),
            modules_dir=Path(data["modules_dir"]),
            root=Path(data["root"]),
            source=data["source"],
            packages=tuple(data.get("packages", ())),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def cached_kernels(cache: Path | None = None) -> list[Kernel]:
    """Kernels fully unpacked in the cache, oldest release first."""
    cache = cache or cache_dir()
    found = []
    for manifest in sorted(cache.glob(f"*/{MANIFEST}")):
        kernel = _manifest_kernel(manifest)
        if kernel and kernel.vmlinuz.is_file() and kernel.modules_dir.is_dir():
            found.append(kernel)
    return sorted(found, key=lambda k: release_key(k.release))


def matches(spec: KernelSpec, kernel: Kernel) -> bool:
    """Whether a cached kernel satisfies a (non-local) spec."""
    if kernel.source not in spec.groups:
        return False
    version = release_key(kernel.release)
    return version[: len(spec.series)] == spec.series


def _run(argv: list[str], what: str, timeout: float) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        package = _PROVIDER.get(argv[0], argv[0])
        raise LabError(f"{argv[0]} not found ({what}); apt-get install {package}") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{what} took longer than {timeout:.0f} s") from None
    if proc.returncode != 0:
        raise LabError(f"{what} failed: {proc.stderr.strip()}")
    return proc.stdout


_PROVIDER = {"depmod": "kmod", "dpkg": "dpkg", "dpkg-deb": "dpkg"}


def _tool(name: str) -> str:
    # depmod lives in /sbin, which is not on a non-root user's PATH.
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if not found:
        raise LabError(f"{name} not found: apt-get install {_PROVIDER.get(name, name)}")
    return found


def depmod(root: Path, release: str) -> None:
    """Write ``modules.dep`` and friends for ``<root>/lib/modules/<release>``."""
    _run(
        [_tool("depmod"), "-a", "-b", str(root), release], f"depmod for {release}", DEPMOD_TIMEOUT_S
    )


def usr_modules_link(root: Path) -> None:
    """Make ``<root>/usr/lib/modules`` reach ``<root>/lib/modules`` too.

    kmod builds differ in where ``modprobe -d``/``depmod -b`` look (bookworm's
    kmod: ``lib/modules``; builds with a merged-/usr moduledir:
    ``usr/lib/modules``), so an unpacked tree offers both.
    """
    usr_lib = root / "usr" / "lib"
    if (root / "lib" / "modules").is_dir() and not (usr_lib / "modules").exists():
        usr_lib.mkdir(parents=True, exist_ok=True)
        (usr_lib / "modules").symlink_to("../../lib/modules")


def _normalise_tree(root: Path, release: str) -> tuple[Path, Path]:
    """Give an unpacked tree ``lib/modules/<release>`` and ``boot/vmlinuz-<release>``.

    trixie and later ship modules in ``usr/lib/modules`` (merged /usr) and the
    7.x split packages ship the image as ``usr/lib/modules/<rel>/vmlinuz*``;
    virtme-ng and ``modprobe -d`` both look for ``<root>/lib/modules``.
    """
    if not (root / "lib").exists() and (root / "usr" / "lib" / "modules").is_dir():
        (root / "lib").symlink_to("usr/lib")
    usr_modules_link(root)
    modules = root / "lib" / "modules" / release
    if not modules.is_dir():
        raise LabError(f"package contents lack lib/modules/{release}")
    boot = root / "boot"
    image = boot / f"vmlinuz-{release}"
    if not image.exists():
        shipped = [modules / n for n in ("vmlinuz", "vmlinuz.unsigned", "vmlinuz.efi.signed")]
        src = next((p for p in shipped if p.is_file()), None)
        if src is None:
            raise LabError(f"no vmlinuz for {release} in the packages")
        boot.mkdir(exist_ok=True)
        image.symlink_to(os.path.relpath(src, boot))
    return image, modules


def write_manifest(kernel: Kernel, directory: Path) -> None:
    data = asdict(kernel)
    data.update({k: str(v) for k, v in data.items() if isinstance(v, Path)})
    data["packages"] = list(kernel.packages)
    tmp = directory / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(directory / MANIFEST)


def _find_remote(spec: KernelSpec, cache: Path, refresh: bool) -> tuple[Candidate, PrivateApt]:
    pattern = "^linux-(image|binary|modules|base)-"
    tried = []
    for group in spec.groups:
        apt = PrivateApt(cache, group)
        if refresh or not apt.has_lists():
            apt.update()
        found = select_newest(apt.search(pattern), spec.series)
        if found:
            return Candidate(found.release, found.version, found.packages, group), apt
        tried.append(group)
    series = ".".join(map(str, spec.series)) or "any"
    raise LabError(
        f"no package matches kernel spec {spec.label!r} (series {series}, amd64) in "
        f"{', '.join(tried)}; run `vfio-hil lab fetch --refresh --kernel {spec.label}` "
        "to update the package lists, or name another series"
    )


def _fetch(spec: KernelSpec, cache: Path, refresh: bool) -> Kernel:
    cand, apt = _find_remote(spec, cache, refresh)
    final = cache / cand.release
    existing = _manifest_kernel(final / MANIFEST)
    if existing and existing.vmlinuz.is_file():
        return Kernel(**{**asdict(existing), "name": spec.label})
    log(f"fetching {cand.release} from {cand.group}: {', '.join(cand.packages)}")
    work = Path(tempfile.mkdtemp(prefix=f".{cand.release}-", dir=cache))
    work.chmod(0o755)  # mkdtemp's 0700 would hide the tree from other users' guests
    try:
        try:
            debs = apt.download(cand.packages, work / "debs")
        except LabError:
            # Stale lists name files the mirror has dropped: refresh once.
            apt.update()
            debs = apt.download(cand.packages, work / "debs")
        root = work / "root"
        dpkg = _tool("dpkg-deb")
        for deb in debs:
            log(f"unpacking {deb.name}")
            _run([dpkg, "-x", str(deb), str(root)], f"dpkg -x {deb.name}", DPKG_TIMEOUT_S)
        version = _run([dpkg, "-f", str(debs[0]), "Version"], "dpkg-deb -f", 60).strip()
        shutil.rmtree(work / "debs")
        _, _ = _normalise_tree(root, cand.release)
        log(f"depmod {cand.release}")
        depmod(root, cand.release)
        if final.exists():
            shutil.rmtree(final)
        work.rename(final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    root = final / "root"
    kernel = Kernel(
        name=spec.label,
        release=cand.release,
        upstream=upstream_version(version),
        vmlinuz=root / "boot" / f"vmlinuz-{cand.release}",
        modules_dir=root / "lib" / "modules" / cand.release,
        root=root,
        source=cand.group,
        packages=cand.packages,
    )
    write_manifest(kernel, final)
    log(f"cached {kernel.describe()} in {final}")
    return kernel


def _local(spec: KernelSpec, cache: Path) -> Kernel:
    """A local vmlinuz (+ modules dir), given a compat root in the cache.

    The compat root holds symlinks ``boot/vmlinuz-<rel>`` and
    ``lib/modules/<rel>`` so virtme-ng and ``modprobe -d`` find the modules
    however the user's tree is laid out.
    """
    assert spec.path is not None
    image = spec.path
    if image.is_dir():
        raise LabError(f"kernel image {image} is a directory: give the vmlinuz or bzImage in it")
    if not image.is_file():
        raise LabError(f"kernel image {image} does not exist")
    release = read_bzimage_release(image)
    if not release:
        raise LabError(f"{image} is not an x86 bzImage (no release string in its header)")
    candidates = (
        [spec.modules]
        if spec.modules
        else [
            image.parent.parent / "lib" / "modules" / release,
            image.parent.parent / "usr" / "lib" / "modules" / release,
            image.parent if (image.parent / "modules.order").exists() else None,
            Path("/lib/modules") / release,
        ]
    )
    modules = next((c for c in candidates if c is not None and c.is_dir()), None)
    if modules is None:
        raise LabError(
            f"no modules directory for {release} next to {image}: pass "
            f"--kernel {image}:/path/to/lib/modules/{release}"
        )
    digest = hashlib.sha256(f"{image}\0{modules}".encode()).hexdigest()[:12]
    root = cache / "local" / f"{release}-{digest}"
    (root / "boot").mkdir(parents=True, exist_ok=True)
    (root / "lib" / "modules").mkdir(parents=True, exist_ok=True)
    usr_modules_link(root)
    for link, target in (
        (root / "boot" / f"vmlinuz-{release}", image),
        (root / "lib" / "modules" / release, modules),
    ):
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    if not (modules / "modules.dep").exists():
        log(f"depmod {release} (writes into {modules})")
        depmod(root, release)
    return Kernel(
        name="local",
        release=release,
        upstream=_numeric_version(release),
        vmlinuz=root / "boot" / f"vmlinuz-{release}",
        modules_dir=root / "lib" / "modules" / release,
        root=root,
        source="local",
    )


def resolve(spec: KernelSpec, *, refresh: bool = False, cache: Path | None = None) -> Kernel:
    """Return a bootable kernel for ``spec``, downloading it only when needed.

    Without ``refresh`` a cached kernel that satisfies the spec is returned
    with no network access; with it, the package lists are updated and a
    newer release is fetched if there is one.
    """
    cache = cache or cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        where = "VFIO_HIL_CACHE " if os.environ.get("VFIO_HIL_CACHE") else ""
        raise LabError(
            f"the kernel cache {where}{cache} cannot be created ({exc.strerror or exc}): "
            "point VFIO_HIL_CACHE at a writable directory, or unset it"
        ) from None
    if spec.is_local:
        return _local(spec, cache)
    if not refresh:
        hits = [k for k in cached_kernels(cache) if matches(spec, k)]
        if hits:
            usr_modules_link(hits[-1].root)  # trees cached by earlier versions
            return Kernel(**{**asdict(hits[-1]), "name": spec.label})
    if spec.groups in ((BUILT_SOURCE,), (COVERAGE_SOURCE,)):
        return _built(spec, cache)
    return _fetch(spec, cache, refresh)


def _built(spec: KernelSpec, cache: Path) -> Kernel:
    """The lab's own kernel, built now when the cache has none (``build``)."""
    from vfio_hil._lab.build import VARIANTS, build_kernel

    flag = " --coverage" if spec.groups == (COVERAGE_SOURCE,) else ""
    log(
        f"kernel {spec.label} is not built yet: building it now (once; cached in {cache}; "
        f"`vfio-hil lab build{flag}` does this step alone)"
    )
    build_kernel(cache, variant=VARIANTS[spec.label])
    hits = [k for k in cached_kernels(cache) if matches(spec, k)]
    if not hits:
        raise LabError(f"the build finished but {cache} holds no {spec.label} kernel")
    return Kernel(**{**asdict(hits[-1]), "name": spec.label})
