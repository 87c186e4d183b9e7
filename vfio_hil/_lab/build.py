"""``vfio-hil lab build``: the lab's own kernel, with every VFIO open path.

No Debian kernel has ``CONFIG_IOMMUFD`` or ``CONFIG_VFIO_NOIOMMU``, so the
cdev + iommufd path and NOIOMMU can only run on a kernel built here.  It is
built from Debian's own ``linux-source-X.Y`` (downloaded with the lab's
private apt setup, see ``apt``), configured from ``allnoconfig`` plus
``LAB_CONFIG`` (every VFIO path built in, and what a virtme-ng guest needs
and nothing else, so a cold build takes minutes, not an hour), built with
ccache when there is one, and installed into the kernel cache, where the
kernel spec ``iommufd`` finds it (``kernels.NAMED_SPECS``).

Layout under ``<cache>/build``: ``linux-source-<version>/`` (the unpacked
tree, never written by the build), ``<flavour>-<version>/`` (the object
tree, ``make O=``: kept, so a second build only relinks), ``ccache/``, and
``<flavour>-<version>.log`` (the last build's output).  The installed kernel
is ``<cache>/<release>/root`` with a ``kernel.json`` like a Debian one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vfio_hil._lab._util import LabError, log
from vfio_hil._lab.apt import PrivateApt

__all__ = [
    "BUILT_SOURCE",
    "COVERAGE",
    "DEFAULT_SOURCE",
    "FLAVOUR",
    "LAB_CONFIG",
    "PLAIN",
    "REQUIRED",
    "VARIANTS",
    "BuildResult",
    "Variant",
    "build_kernel",
    "missing_symbols",
]

BUILT_SOURCE = "built"  # Kernel.source of a kernel built here
DEFAULT_SOURCE = "7.2"
FLAVOUR = "iommufd"
# Where linux-source-X.Y is found, newest suite first.
SOURCE_GROUPS = ("sid", "trixie-backports", "trixie", "bookworm")
UNPACK_TIMEOUT_S = 900.0
CONFIG_TIMEOUT_S = 300.0
BUILD_TIMEOUT_S = 3 * 3600.0
INSTALL_TIMEOUT_S = 600.0
PROGRESS_EVERY_S = 30.0
LOCK_WAIT_S = BUILD_TIMEOUT_S
# CC/AS/LD/AR lines of a cold build of LAB_CONFIG on 7.2 (counted, for progress).
EXPECTED_STEPS = 2070

# What the lab kernel must have; the build fails, naming them, if the
# configuration step dropped any (a newer tree can rename or gate a symbol).
REQUIRED = (
    "IOMMUFD",
    "VFIO_DEVICE_CDEV",
    "VFIO_NOIOMMU",
    "VFIO_GROUP",
    "VFIO_CONTAINER",
    "VFIO_IOMMU_TYPE1",
    "VFIO_PCI",
    "VFIO_PCI_INTX",
    "INTEL_IOMMU",
    "IRQ_REMAP",
    "PCI_MSI",
    "PCI_IOV",
    "PCI_PF_STUB",  # holds an SR-IOV PF while its VF is tested (the nvme-vf preset)
    "EVENTFD",
    "VIRTIO_PCI",
    "VIRTIO_CONSOLE",
    "NET_9P_VIRTIO",
    "9P_FS",
    "DEVTMPFS",
    # /sys/class/dmi/id tells the platform (QEMU's IO-APIC drops a level raised
    # before INTx is enabled: host_platform); without it the model expects a
    # signal the guest never sees.
    "DMIID",
)

# Merged over allnoconfig.  Everything is built in: the guest's modprobe of
# vfio_pci then finds it in modules.builtin, and no initramfs is needed.
LAB_CONFIG = """\
# every VFIO path
CONFIG_IOMMUFD=y
CONFIG_VFIO=y
CONFIG_VFIO_DEVICE_CDEV=y
CONFIG_VFIO_GROUP=y
CONFIG_VFIO_CONTAINER=y
CONFIG_VFIO_IOMMU_TYPE1=y
CONFIG_VFIO_NOIOMMU=y
CONFIG_VFIO_PCI=y
CONFIG_VFIO_PCI_INTX=y
CONFIG_IOMMU_SUPPORT=y
CONFIG_INTEL_IOMMU=y
CONFIG_IRQ_REMAP=y
CONFIG_X86_X2APIC=y
CONFIG_ACPI=y
CONFIG_PCI=y
CONFIG_PCI_MSI=y
CONFIG_PCI_IOV=y
CONFIG_PCI_PF_STUB=y
CONFIG_PCIEPORTBUS=y
CONFIG_PCIEAER=y
CONFIG_EVENTFD=y
CONFIG_DEBUG_FS=y
CONFIG_HUGETLBFS=y
CONFIG_DMI=y
CONFIG_DMIID=y
# a guest that runs the host's userspace over 9p (virtme-ng)
CONFIG_SMP=y
CONFIG_HYPERVISOR_GUEST=y
CONFIG_PARAVIRT=y
CONFIG_KVM_GUEST=y
CONFIG_PRINTK=y
CONFIG_PRINTK_TIME=y
CONFIG_BUG=y
CONFIG_KALLSYMS=y
CONFIG_MULTIUSER=y
CONFIG_SYSVIPC=y
CONFIG_FUTEX=y
CONFIG_EPOLL=y
CONFIG_SIGNALFD=y
CONFIG_TIMERFD=y
CONFIG_SHMEM=y
CONFIG_FILE_LOCKING=y
CONFIG_FHANDLE=y
CONFIG_POSIX_TIMERS=y
CONFIG_PROC_FS=y
CONFIG_PROC_SYSCTL=y
CONFIG_SYSFS=y
CONFIG_TMPFS=y
CONFIG_TMPFS_POSIX_ACL=y
CONFIG_DEVTMPFS=y
CONFIG_DEVTMPFS_MOUNT=y
CONFIG_BLK_DEV_INITRD=y
CONFIG_BINFMT_ELF=y
CONFIG_BINFMT_SCRIPT=y
CONFIG_INOTIFY_USER=y
CONFIG_OVERLAY_FS=y
CONFIG_TTY=y
CONFIG_UNIX98_PTYS=y
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y
CONFIG_EARLY_PRINTK=y
CONFIG_VIRTIO_MENU=y
CONFIG_VIRTIO=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_CONSOLE=y
CONFIG_NET=y
CONFIG_UNIX=y
CONFIG_NETWORK_FILESYSTEMS=y
CONFIG_NET_9P=y
CONFIG_NET_9P_VIRTIO=y
CONFIG_9P_FS=y
CONFIG_9P_FS_POSIX_ACL=y
CONFIG_MODULES=y
CONFIG_MODULE_UNLOAD=y
CONFIG_HIGH_RES_TIMERS=y
CONFIG_NO_HZ_IDLE=y
CONFIG_DETECT_HUNG_TASK=y
CONFIG_MAGIC_SYSRQ=y
CONFIG_DEBUG_INFO_NONE=y
CONFIG_LOCALVERSION="-vfio-hil"
# CONFIG_LOCALVERSION_AUTO is not set
"""


@dataclass(frozen=True)
class Variant:
    """One flavour of the lab kernel: its objects dir, Kconfig fragment, install tag.

    ``source`` is the installed ``Kernel.source``, which the kernel spec
    matches on (``kernels.NAMED_SPECS``), so two variants never stand in for
    each other; ``make_vars`` go on the compile's make command line.
    """

    flavour: str
    config: str
    required: tuple[str, ...]
    source: str
    make_vars: tuple[str, ...] = ()
    expected_steps: int = EXPECTED_STEPS


PLAIN = Variant(FLAVOUR, LAB_CONFIG, REQUIRED, BUILT_SOURCE)

COVERAGE_SOURCE = "built-cov"
# The directories whose code is profiled (gcov): the VFIO core, vfio-pci and iommufd.
COVERAGE_DIRS = ("drivers/vfio", "drivers/iommu/iommufd")
COVERAGE_CONFIG = LAB_CONFIG.replace(
    'CONFIG_LOCALVERSION="-vfio-hil"', 'CONFIG_LOCALVERSION="-vfio-hil-cov"'
) + (
    "# gcov counters in debugfs (/sys/kernel/debug/gcov), only where GCOV_PROFILE says\n"
    "CONFIG_GCOV_KERNEL=y\n"
    "# CONFIG_GCOV_PROFILE_ALL is not set\n"
)
# GCOV_PROFILE := y for COVERAGE_DIRS and their subdirectories without touching the
# shared source tree: a make command-line variable reaches every sub-make (through
# MAKEFLAGS) and is expanded there, where kbuild's $(obj) is that sub-make's directory.
# Elsewhere it is empty, so CONFIG_GCOV_PROFILE_ALL (off) decides; a per-file
# GCOV_PROFILE_x.o := n still wins (scripts/Makefile.lib checks it first).
_PROFILED = " ".join(f"{d} {d}/%" for d in COVERAGE_DIRS)
COVERAGE = Variant(
    "iommufd-cov",
    COVERAGE_CONFIG,
    (*REQUIRED, "GCOV_KERNEL", "DEBUG_FS"),
    COVERAGE_SOURCE,
    (f"GCOV_PROFILE=$(if $(filter {_PROFILED},$(obj)),y)",),
)
VARIANTS = {v.flavour: v for v in (PLAIN, COVERAGE)}

# tool -> Debian package; gelf.h stands for libelf-dev (objtool needs it).
_BUILD_TOOLS = {"gcc": "gcc", "make": "make", "flex": "flex", "bison": "bison", "bc": "bc"}
_HEADERS = {Path("/usr/include/gelf.h"): "libelf-dev", Path("/usr/include/openssl"): "libssl-dev"}
_STEP = re.compile(r"^\s+(CC|AS|LD|AR)\s")


@dataclass(frozen=True)
class BuildResult:
    release: str
    upstream: str
    root: Path
    seconds: float
    compiled: int  # files compiled in this build (0: nothing had changed)
    ccache: bool


def missing_symbols(config_text: str, required: Sequence[str] = REQUIRED) -> list[str]:
    """The ``required`` symbols that are not ``=y`` in a ``.config``.

    >>> missing_symbols("CONFIG_VFIO=y\\n# CONFIG_IOMMUFD is not set\\n", ("VFIO", "IOMMUFD"))
    ['IOMMUFD']
    """
    on = set(re.findall(r"^CONFIG_(\w+)=y$", config_text, re.M))
    return [s for s in required if s not in on]


def check_tools() -> None:
    """A LabError naming the packages to install when a build tool is missing."""
    missing = [pkg for tool, pkg in _BUILD_TOOLS.items() if shutil.which(tool) is None]
    missing += [pkg for path, pkg in _HEADERS.items() if not path.exists()]
    if missing:
        raise LabError(
            f"building the lab kernel needs {', '.join(missing)}: "
            f"apt-get install {' '.join(missing)} (bash .ci/lab.sh installs them)"
        )


def _run(argv: Sequence[str], what: str, timeout: float, env: dict[str, str] | None = None) -> str:
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except FileNotFoundError:
        raise LabError(f"{argv[0]} not found ({what})") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{what} took longer than {timeout:.0f} s") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise LabError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return proc.stdout


@contextmanager
def _build_lock(build_dir: Path) -> Iterator[None]:
    """One build at a time per cache (a second one waits, bounded, then reuses)."""
    build_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(build_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + LOCK_WAIT_S
        said = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not said:
                    log(f"another build holds {build_dir / '.lock'}; waiting for it")
                    said = True
                if time.monotonic() > deadline:
                    raise LabError(
                        f"another lab kernel build held {build_dir / '.lock'} for "
                        f"{LOCK_WAIT_S:.0f} s; stop it or remove the lock file"
                    ) from None
                time.sleep(1.0)
        yield
    finally:
        os.close(fd)


def _source_tree(source: str, build_dir: Path, cache: Path) -> tuple[Path, str, str]:
    """(tree, upstream version, provenance) for ``source``: a series or a path."""
    given = Path(source).expanduser()
    if "/" in source or given.exists():
        if not (given / "Makefile").is_file() or not (given / "drivers" / "vfio").is_dir():
            raise LabError(f"{source}: not a kernel source tree (no Makefile or drivers/vfio)")
        tree = given.absolute()
        version = _run(["make", "-s", "-C", str(tree), "kernelversion"], "make kernelversion", 120)
        return tree, version.strip(), f"tree {tree}"
    if not re.fullmatch(r"\d+\.\d+", source):
        raise LabError(
            f"unknown kernel source {source!r}: give a series such as 7.2 or 6.12 "
            "(Debian's linux-source-X.Y), or the path of a kernel tree"
        )
    package = f"linux-source-{source}"
    record = build_dir / f"{package}.json"
    with contextlib.suppress(OSError, ValueError, KeyError):
        known = json.loads(record.read_text())
        tree = build_dir / f"linux-source-{known['upstream']}"
        if (tree / "Makefile").is_file():  # unpacked before: no network
            return tree, str(known["upstream"]), str(known["provenance"])
    for group in SOURCE_GROUPS:
        apt = PrivateApt(cache, group)
        if not apt.has_lists():
            apt.update()
        if package in apt.search(f"^{re.escape(package)}$"):
            break
    else:
        raise LabError(
            f"no {package} in {', '.join(SOURCE_GROUPS)}; Debian ships linux-source-7.2 "
            "(sid) and linux-source-6.12 (trixie); or give a kernel tree's path"
        )
    with tempfile.TemporaryDirectory(dir=build_dir) as tmp:
        debs = apt.download([package], Path(tmp))
        deb_version = _run(["dpkg-deb", "-f", str(debs[0]), "Version"], "dpkg-deb -f", 60).strip()
        upstream = deb_version.split(":", 1)[-1].rsplit("-", 1)[0]
        tree = build_dir / f"linux-source-{upstream}"
        provenance = f"{package} {deb_version} ({group})"
        if (tree / "Makefile").is_file():
            record.write_text(json.dumps({"upstream": upstream, "provenance": provenance}) + "\n")
            return tree, upstream, provenance
        log(f"unpacking {debs[0].name}")
        _run(["dpkg-deb", "-x", str(debs[0]), tmp], f"dpkg-deb -x {debs[0].name}", UNPACK_TIMEOUT_S)
        tarballs = list(Path(tmp, "usr", "src").glob("linux-source-*.tar.*"))
        if not tarballs:
            raise LabError(f"{debs[0].name} holds no usr/src/linux-source-*.tar.*")
        staging = Path(tmp) / "tree"
        staging.mkdir()
        _run(
            ["tar", "-xf", str(tarballs[0]), "-C", str(staging), "--strip-components=1"],
            f"unpacking {tarballs[0].name}",
            UNPACK_TIMEOUT_S,
        )
        staging.rename(tree)
    record.write_text(json.dumps({"upstream": upstream, "provenance": provenance}) + "\n")
    return tree, upstream, provenance


def _make(
    tree: Path, objects: Path, *targets: str, cc: str = "gcc", make_vars: Sequence[str] = ()
) -> list[str]:
    return [
        "make",
        "-C",
        str(tree),
        f"O={objects}",
        "ARCH=x86_64",
        f"CC={cc}",
        f"-j{os.cpu_count() or 1}",
        *make_vars,
        *targets,
    ]


def _configure(tree: Path, objects: Path, config: str, required: Sequence[str] = REQUIRED) -> None:
    """allnoconfig + ``config``; rerun only when the fragment or tree changed."""
    stamp = objects / ".vfio-hil-config"
    digest = hashlib.sha256(f"{tree}\0{config}".encode()).hexdigest()
    dot_config = objects / ".config"
    if dot_config.is_file() and stamp.is_file() and stamp.read_text() == digest:
        return
    objects.mkdir(parents=True, exist_ok=True)
    fragment = objects / "vfio-hil.config"
    fragment.write_text(config)
    log("configuring: allnoconfig + the lab's fragment")
    _run(_make(tree, objects, "allnoconfig"), "make allnoconfig", CONFIG_TIMEOUT_S)
    _run(
        [
            str(tree / "scripts" / "kconfig" / "merge_config.sh"),
            "-m",
            "-O",
            str(objects),
            str(dot_config),
            str(fragment),
        ],
        "merge_config.sh",
        CONFIG_TIMEOUT_S,
        env={**os.environ, "ARCH": "x86_64"},
    )
    _run(_make(tree, objects, "olddefconfig"), "make olddefconfig", CONFIG_TIMEOUT_S)
    missing = missing_symbols(dot_config.read_text(), required)
    if missing:
        raise LabError(
            f"the configured kernel lacks {', '.join('CONFIG_' + s for s in missing)} "
            f"({objects / '.config'}): this tree's Kconfig gates or renamed them; "
            "build another source (--source 7.2) or report it"
        )
    stamp.write_text(digest)


def _compile(argv: list[str], env: dict[str, str], log_path: Path, expected: int) -> int:
    """Run the build, logging to ``log_path``, a progress line every 30 s."""
    compiled = 0
    started = time.monotonic()
    done = threading.Event()

    def progress() -> None:
        while not done.wait(PROGRESS_EVERY_S):
            minutes, seconds = divmod(int(time.monotonic() - started), 60)
            log(f"building: {compiled} of ~{expected} steps, {minutes}m{seconds:02d}s")

    ticker = threading.Thread(target=progress, daemon=True)
    with log_path.open("w") as out:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        ticker.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line)
                if _STEP.match(line):
                    compiled += 1
                if time.monotonic() - started > BUILD_TIMEOUT_S:
                    raise LabError(f"the kernel build took longer than {BUILD_TIMEOUT_S:.0f} s")
            code = proc.wait()
        finally:
            done.set()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if code != 0:
        tail = "\n".join(log_path.read_text().splitlines()[-20:])
        raise LabError(
            f"the kernel build failed (exit {code}); its last lines:\n{tail}\n"
            f"full log: {log_path}; fix the cause and run `vfio-hil lab build` again "
            "(it goes on from what was built), or `vfio-hil lab build --clean`"
        )
    return compiled


def build_kernel(
    cache: Path,
    *,
    source: str = DEFAULT_SOURCE,
    clean: bool = False,
    config: str | None = None,
    variant: Variant = PLAIN,
) -> BuildResult:
    """Build (or reuse) the lab kernel ``variant`` from ``source`` and install it in
    ``cache`` (``config``: another fragment than the variant's)."""
    from vfio_hil._lab.kernels import Kernel, depmod, write_manifest

    check_tools()
    build_dir = cache / "build"
    started = time.monotonic()
    with _build_lock(build_dir):
        tree, upstream, provenance = _source_tree(source, build_dir, cache)
        objects = build_dir / f"{variant.flavour}-{upstream}"
        if clean and objects.exists():
            log(f"removing {objects}")
            shutil.rmtree(objects)
        _configure(tree, objects, variant.config if config is None else config, variant.required)
        env = dict(os.environ)
        ccache = shutil.which("ccache")
        if ccache:
            env.update(CCACHE_DIR=str(build_dir / "ccache"), CCACHE_BASEDIR=str(build_dir))
        else:
            log("ccache not found: a rebuild from scratch will compile everything again")
        log(f"building {provenance} in {objects} on {os.cpu_count()} cores")
        compiled = _compile(
            _make(
                tree,
                objects,
                "bzImage",
                "modules",
                cc="ccache gcc" if ccache else "gcc",
                make_vars=variant.make_vars,
            ),
            env,
            build_dir / f"{variant.flavour}-{upstream}.log",
            variant.expected_steps,
        )
        release = _run(_make(tree, objects, "-s", "kernelrelease"), "kernelrelease", 120).strip()
        final = cache / release
        root = final / "root"
        image = root / "boot" / f"vmlinuz-{release}"
        built_image = objects / "arch" / "x86" / "boot" / "bzImage"
        if compiled or not image.is_file():
            staging = Path(tempfile.mkdtemp(prefix=f".{release}-", dir=cache))
            staging.chmod(0o755)
            try:
                (staging / "root" / "boot").mkdir(parents=True)
                shutil.copy2(built_image, staging / "root" / "boot" / f"vmlinuz-{release}")
                shutil.copy2(objects / ".config", staging / "root" / "boot" / f"config-{release}")
                _run(
                    _make(
                        tree,
                        objects,
                        "modules_install",
                        f"INSTALL_MOD_PATH={staging / 'root'}",
                        "DEPMOD=true",
                    ),
                    "make modules_install",
                    INSTALL_TIMEOUT_S,
                )
                (staging / "root" / "lib" / "modules" / release).mkdir(parents=True, exist_ok=True)
                depmod(staging / "root", release)
                if final.exists():
                    shutil.rmtree(final)
                staging.rename(final)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            write_manifest(
                Kernel(
                    name=variant.flavour,
                    release=release,
                    upstream=upstream,
                    vmlinuz=image,
                    modules_dir=root / "lib" / "modules" / release,
                    root=root,
                    source=variant.source,
                    packages=(provenance,),
                ),
                final,
            )
    seconds = time.monotonic() - started
    return BuildResult(release, upstream, root, seconds, compiled, ccache is not None)
