"""The in-guest side of the lab (stdlib only; runs as root inside the VM).

    python -S .../vfio_hil/_lab/guest.py --results DIR [--modroot ROOT] \
        [--device VID:DID]... [--deadline UNIX_TIME] -- COMMAND...

(``python -m vfio_hil._lab.guest`` works too; the host runs the file by path
with -S because importing site-packages and the package costs seconds over
9p under TCG.)

Loads vfio-pci, binds every emulated device with a listed vendor:device id
to it (driver_override + drivers_probe), checks that /dev/vfio/<group>
exists, then runs COMMAND with VFIO_HIL_DEVICES, VFIO_HIL_LAB,
VFIO_HIL_KERNEL and VFIO_HIL_RESULTS set. The exit code, the output, the
kernel log and a summary go to the results directory, which the host shares.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

MARK = "VFIO-HIL-LAB:"
SYS_PCI = Path("/sys/bus/pci/devices")
DEV_VFIO = Path("/dev/vfio")
MODULES = ("vfio_pci", "vfio_iommu_type1")
# Loaded when the kernel has them (CONFIG_IOMMUFD); Debian's kernels do not.
OPTIONAL_MODULES = ("iommufd",)
MODPROBE_TIMEOUT_S = 120.0
NODE_WAIT_S = 5.0
PYTEST_PLUGIN = "vfio_hil._lab.pytest_plugin"
# Exit code when binding failed and the command never ran (guest.json says why).
SETUP_FAILED = 125
# A second 9p share of the host's / that the host adds for us (qemu.HOST_SHARE_TAG).
HOST_SHARE_TAG = "vfio_hil_root"
SHARE_MOUNT = Path("/run/vfio-hil/root")
KEEP = Path("/run/vfio-hil/keep")
MOUNT_TIMEOUT_S = 30.0


class GuestError(Exception):
    """Setup failed before the command could run."""


@dataclass
class BoundDevice:
    """A device now driven by vfio-pci."""

    address: str
    vendor_device: str
    group: str
    node: str


def say(message: str) -> None:
    """A marker line the host recognises (flushed: the console is shared)."""
    print(f"{MARK} {message}", flush=True)


def modprobe(module: str, modroot: str | None, *, optional: bool = False) -> bool:
    """Load ``module``; from ``modroot`` when /lib/modules has no index for us."""
    exe = shutil.which("modprobe") or shutil.which("modprobe", path="/usr/sbin:/sbin")
    if exe is None:
        raise GuestError("modprobe not found in the guest (the host needs kmod installed)")
    argv = [exe]
    if modroot and not Path(f"/lib/modules/{os.uname().release}/modules.dep").exists():
        # The host has no /lib/modules for virtme-ng to link over: load from
        # the unpacked package directly.
        argv += ["-d", modroot]
    argv += (["-q"] if optional else []) + [module]
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=MODPROBE_TIMEOUT_S, check=False
    )
    if proc.returncode != 0 and not optional:
        raise GuestError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
    return proc.returncode == 0


def read_id(dev: Path) -> str:
    """``vvvv:dddd`` of a PCI device directory in sysfs."""
    vendor = (dev / "vendor").read_text().strip().removeprefix("0x")
    device = (dev / "device").read_text().strip().removeprefix("0x")
    return f"{vendor}:{device}".lower()


# "vf:VID:DID": create one SR-IOV VF on each PF with that id and bind the VF.
VF_PREFIX = "vf:"
# The driver that owns a PF while its VFs exist: sriov_numvfs needs a PF
# driver with sriov_configure.  pci-pf-stub (CONFIG_PCI_PF_STUB) is the
# kernel's driver for exactly that (pci_sriov_configure_simple, and nothing
# else: the PF's own function is left alone); driver_override binds it to
# any PF.
PF_DRIVER = "pci-pf-stub"
PF_MODULE = "pci_pf_stub"
DRIVER_WAIT_S = 10.0


def find_devices(
    ids: Sequence[str], sys_pci: Path = SYS_PCI, modroot: str | None = None
) -> list[tuple[str, str]]:
    """``(address, id)`` of every device matching ``ids``, in ``ids`` order.

    A plain id matches physical functions only; ``vf:ID`` creates a VF on
    each PF with that id (``create_vf``) and yields the VF.
    """
    present = sorted((p.name, read_id(p)) for p in sys_pci.iterdir() if not is_vf(p))
    found = []
    for wanted in ids:
        pf_id = wanted.lower().removeprefix(VF_PREFIX)
        hits = [(addr, vd) for addr, vd in present if vd == pf_id]
        if not hits:
            listing = ", ".join(f"{a} {v}" for a, v in present)
            raise GuestError(f"no PCI device {pf_id} in the guest; present: {listing}")
        if wanted.lower().startswith(VF_PREFIX):
            hits = [create_vf(addr, vd, sys_pci, modroot) for addr, vd in hits]
        found += hits
    return found


def is_vf(dev: Path) -> bool:
    """Whether a sysfs PCI device is an SR-IOV virtual function."""
    return (dev / "physfn").exists()


def _driver_of(dev: Path) -> str | None:
    driver = dev / "driver"
    return driver.resolve().name if driver.exists() else None


def create_vf(
    pf_address: str, pf_id: str, sys_pci: Path = SYS_PCI, modroot: str | None = None
) -> tuple[str, str]:
    """Enable one VF on the PF at ``pf_address``; ``(address, id)`` of the VF.

    The PF is bound to pci-pf-stub (``PF_DRIVER``), VF autoprobe is turned
    off so no driver but vfio-pci ever touches the VF, then sriov_numvfs=1.
    """
    pf = sys_pci / pf_address
    if not (pf / "sriov_totalvfs").exists():
        raise GuestError(f"{pf_address} ({pf_id}) has no SR-IOV capability: no VF to create")
    if not (pf / "virtfn0").exists():
        driver = PF_DRIVER
        if _driver_of(pf) != driver:
            try:
                modprobe(PF_MODULE, modroot)
            except GuestError as exc:
                raise GuestError(
                    f"{pf_address}: a VF needs the PF on {driver} (CONFIG_PCI_PF_STUB): {exc}"
                ) from None
            (pf / "driver_override").write_text(driver)
            if (pf / "driver").exists():
                (pf / "driver" / "unbind").write_text(pf_address)
            (sys_pci.parent / "drivers_probe").write_text(pf_address)
            if _driver_of(pf) != driver:
                raise GuestError(f"{pf_address} did not bind to {driver}: {_driver_of(pf)}")
        (pf / "sriov_drivers_autoprobe").write_text("0")
        (pf / "sriov_numvfs").write_text("1")
    deadline = time.monotonic() + DRIVER_WAIT_S
    while not (pf / "virtfn0").exists():
        if time.monotonic() > deadline:
            raise GuestError(f"{pf_address}: sriov_numvfs=1 made no virtfn0")
        time.sleep(0.05)
    vf = (pf / "virtfn0").resolve()
    return vf.name, read_id(vf)


def bind(address: str, sys_pci: Path = SYS_PCI) -> None:
    """Hand one device to vfio-pci: override, unbind the current driver, reprobe."""
    dev = sys_pci / address
    (dev / "driver_override").write_text("vfio-pci")
    driver = dev / "driver"
    if driver.exists():
        if driver.resolve().name == "vfio-pci":
            return
        (driver / "unbind").write_text(address)
    (sys_pci.parent / "drivers_probe").write_text(address)
    bound = driver.resolve().name if driver.exists() else None
    if bound != "vfio-pci":
        raise GuestError(f"{address} is bound to {bound or 'no driver'}, not vfio-pci")


def group_node(address: str, sys_pci: Path = SYS_PCI, dev_vfio: Path = DEV_VFIO) -> tuple[str, str]:
    """IOMMU group of a device and its /dev/vfio node (waits for devtmpfs).

    Without an IOMMU (NOIOMMU mode) vfio makes the group itself and names the
    node ``noiommu-N``."""
    link = sys_pci / address / "iommu_group"
    if not link.exists():
        raise GuestError(
            f"{address} has no IOMMU group: is intel_iommu=on (or, without an IOMMU, "
            "vfio.enable_unsafe_noiommu_mode=1) on the command line?"
        )
    group = link.resolve().name
    nodes = (dev_vfio / group, dev_vfio / f"noiommu-{group}")
    deadline = time.monotonic() + NODE_WAIT_S
    while not any(n.exists() for n in nodes):
        if time.monotonic() > deadline:
            raise GuestError(f"neither {nodes[0]} nor {nodes[1]} appeared for {address}")
        time.sleep(0.05)
    return group, str(next(n for n in nodes if n.exists()))


def mount_points(mountinfo: str) -> list[str]:
    """Mount points in ``/proc/self/mountinfo`` text (field 5, octal escapes decoded)."""
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4]))
    return points


def plan_cached_dirs(
    candidates: Sequence[str], mounts: Sequence[str]
) -> list[tuple[str, list[str]]]:
    """Directories to re-bind from the cached share, each with the mounts below it.

    A directory inside another chosen one, ``/`` itself and mount points are
    left alone; the mounts below a chosen directory (the results share,
    virtme-ng's /lib/modules tmpfs) must be carried over the new bind.
    """
    chosen: list[str] = []
    for d in sorted({os.path.normpath(c) for c in candidates if os.path.isabs(c)}):
        if d == "/" or d in mounts or any(d.startswith(c + "/") for c in chosen):
            continue
        chosen.append(d)
    plan = []
    for d in chosen:
        below = sorted({m for m in mounts if m.startswith(d + "/")})
        top = [m for m in below if not any(m.startswith(o + "/") for o in below)]
        plan.append((d, top))
    return plan


def _mount(*args: str) -> None:
    exe = shutil.which("mount") or shutil.which("mount", path="/usr/bin:/bin")
    if exe is None:
        raise GuestError("mount not found in the guest")
    proc = subprocess.run(
        [exe, *args], capture_output=True, text=True, timeout=MOUNT_TIMEOUT_S, check=False
    )
    if proc.returncode != 0:
        raise GuestError(f"mount {' '.join(args)}: {proc.stderr.strip()}")


def cache_host_reads(candidates: Sequence[str]) -> list[str]:
    """Serve ``candidates`` from a ``cache=loose`` 9p mount of the host's root.

    virtme-ng mounts the root without caching, so every stat and read is a
    round trip to QEMU: pytest's start-up took minutes under TCG. The host's
    files do not change during a run, so a second, cached, read-only share
    is bound over the directories the command reads (the interpreter, the
    venv, the sources); the results directory stays on its coherent share.
    Returns the directories bound (none when the share is absent).
    """
    tags = Path("/sys/bus/virtio/drivers/9pnet_virtio").glob("virtio*/mount_tag")
    if not any(t.read_text().strip("\0\n") == HOST_SHARE_TAG for t in tags):
        return []
    SHARE_MOUNT.mkdir(parents=True, exist_ok=True)
    opts = "trans=virtio,version=9p2000.L,msize=512000,cache=loose,access=any,ro"
    _mount("-t", "9p", "-o", opts, HOST_SHARE_TAG, str(SHARE_MOUNT))
    _mount("--make-rprivate", "/")  # mount --move refuses shared parents
    plan = plan_cached_dirs(candidates, mount_points(Path("/proc/self/mountinfo").read_text()))
    bound = []
    for n, (directory, below) in enumerate(plan):
        source = SHARE_MOUNT / directory.lstrip("/")
        # Every mount below must have a place to go back to in the new tree.
        if not source.is_dir() or not all((SHARE_MOUNT / m.lstrip("/")).exists() for m in below):
            continue
        kept: list[tuple[Path, str]] = []
        try:
            for i, mount in enumerate(below):
                keep = KEEP / f"{n}.{i}"
                keep.mkdir(parents=True, exist_ok=True)
                _mount("--move", mount, str(keep))
                kept.append((keep, mount))
            _mount("--bind", str(source), directory)
            bound.append(directory)
        finally:
            for keep, mount in kept:
                _mount("--move", str(keep), mount)
    return bound


def is_pytest(command: Sequence[str]) -> bool:
    """Whether ``command`` runs pytest (``pytest ...`` or ``python -m pytest ...``)."""
    if not command:
        return False
    name = Path(command[0]).name
    if name in ("pytest", "py.test") or name.startswith("pytest-3"):
        return True
    return name.startswith("python") and list(command[1:3]) == ["-m", "pytest"]


def pytest_command(command: Sequence[str], results: Path) -> list[str]:
    """Add a JUnit report and the test-marker plugin to a pytest command."""
    split = 3 if Path(command[0]).name.startswith("python") else 1
    # The guest's root is read-only: keep pytest's cache in the results dir.
    extra = [
        f"--junitxml={results / 'junit.xml'}",
        "-p",
        PYTEST_PLUGIN,
        "-o",
        f"cache_dir={results / '.pytest_cache'}",
    ]
    return [*command[:split], *extra, *command[split:]]


def read_kmsg(limit: int = 20000) -> list[str]:
    """The kernel log records currently in the ring buffer, as text lines."""
    lines: list[str] = []
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return lines
    try:
        while len(lines) < limit:
            try:
                record = os.read(fd, 8192).decode("utf-8", "replace")
            except BlockingIOError:
                break
            except OSError:  # EPIPE: a record was overwritten while reading
                continue
            head, _, message = record.partition(";")
            fields = head.split(",")
            usec = int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else 0
            text = message.split("\n", 1)[0]
            lines.append(f"[{usec // 1_000_000:5d}.{usec % 1_000_000:06d}] {text}")
    finally:
        os.close(fd)
    return lines


def run_command(
    command: Sequence[str], env: dict[str, str], log_path: Path, deadline: float | None
) -> int:
    """Run ``command``, tee its output to stdout and ``log_path``; kill it at ``deadline``."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert proc.stdout is not None
        timer = None
        if deadline is not None:

            def expire() -> None:
                say(f"command timeout: killing it at the guest deadline ({deadline:.0f})")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)

            timer = threading.Timer(max(0.0, deadline - time.time()), expire)
            timer.daemon = True
            timer.start()
        out = sys.stdout.buffer
        for chunk in proc.stdout:
            out.write(chunk)
            out.flush()
            log.write(chunk)
        code = proc.wait()
        if timer:
            timer.cancel()
    # A signal death is reported the way a shell does (128 + signal).
    return code if code >= 0 else 128 - code


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point inside the guest; returns the command's exit code."""
    parser = argparse.ArgumentParser(prog="vfio_hil._lab.guest")
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--modroot")
    parser.add_argument("--device", action="append", default=[], dest="ids")
    parser.add_argument("--deadline", type=float)
    parser.add_argument("--cached-read", action="append", default=[], metavar="DIR")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")

    results: Path = args.results
    results.mkdir(parents=True, exist_ok=True)
    release = os.uname().release
    say(f"guest up: kernel {release}")
    summary: dict[str, object] = {"kernel": release, "command": command}
    try:
        for module in MODULES:
            modprobe(module, args.modroot)
        summary["iommufd"] = any(modprobe(m, args.modroot, optional=True) for m in OPTIONAL_MODULES)
        bound = []
        for address, vd in find_devices(args.ids, modroot=args.modroot):
            bind(address)
            group, node = group_node(address)
            bound.append(BoundDevice(address, vd, group, node))
            say(f"bound {address} ({vd}) to vfio-pci, group {group}: {node}")
    except (GuestError, OSError, subprocess.TimeoutExpired) as exc:
        say(f"setup failed: {exc}")
        summary["error"] = str(exc)
        (results / "guest.json").write_text(json.dumps(summary, indent=2) + "\n")
        (results / "dmesg.txt").write_text("\n".join(read_kmsg()) + "\n")
        (results / "exit_code").write_text(f"{SETUP_FAILED}\n")
        return SETUP_FAILED
    try:
        summary["cached_reads"] = cache_host_reads(args.cached_read)
    except (GuestError, OSError, subprocess.TimeoutExpired) as exc:
        # Only slower without it: go on uncached.
        say(f"host file cache not set up ({exc}); reads stay uncached")
    cdev = DEV_VFIO / "devices"
    summary.update(
        devices=[asdict(b) for b in bound],
        dev_vfio=sorted(os.listdir(DEV_VFIO)),
        vfio_cdev=cdev.is_dir(),
    )
    cdevs = "/dev/vfio/devices" if cdev.is_dir() else "none (no CONFIG_VFIO_DEVICE_CDEV)"
    say(f"/dev/vfio: {' '.join(sorted(os.listdir(DEV_VFIO)))}; device cdevs: {cdevs}")

    env = dict(os.environ)
    env.update(
        VFIO_HIL_DEVICES=",".join(b.address for b in bound),
        VFIO_HIL_LAB="1",
        VFIO_HIL_KERNEL=release,
        VFIO_HIL_RESULTS=str(results),
    )
    # Hypothesis' example database would otherwise land on the read-only root.
    env.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(results / ".hypothesis"))
    if is_pytest(command):
        command = pytest_command(command, results)
    summary["ran"] = command
    say(f"command start: {' '.join(command)}")
    start = time.monotonic()
    try:
        code = run_command(command, env, results / "output.log", args.deadline)
    except OSError as exc:
        print(f"cannot run {command[0]}: {exc}", flush=True)
        code = 127
    summary.update(exit_code=code, seconds=round(time.monotonic() - start, 3))
    say(f"command exit {code}")
    (results / "guest.json").write_text(json.dumps(summary, indent=2) + "\n")
    (results / "dmesg.txt").write_text("\n".join(read_kmsg()) + "\n")
    # Written last: its presence tells the host the guest finished cleanly.
    (results / "exit_code").write_text(f"{code}\n")
    os.sync()
    return code


if __name__ == "__main__":
    sys.exit(main())
