"""QEMU and virtme-ng: tool discovery, the KVM probe, device presets, the argv.

The guest is started with ``virtme-run`` (virtme-ng's runner) rather than
``vng``: ``vng`` joins its arguments into a shell string, while ``virtme-run``
takes an argv, so nothing here needs shell quoting. virtme-run shares the
host's root file system read-only over 9p, links the kernel's modules to
``/lib/modules/<release>`` and runs one shell command.
"""

from __future__ import annotations

import importlib.util
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vfio_hil._lab._util import LabError

Accel = Literal["kvm", "tcg"]

KVM_PROBE_TIMEOUT_S = 6.0

# 1234:11e8 is QEMU's edu device; 1af4:1044 is a modern-only virtio-rng.
EDU_ID = "1234:11e8"
VIRTIO_RNG_ID = "1af4:1044"
ROOT_PORT_ID = "vfio_hil_rp0"
# The "kinds" devices (issue 11): QEMU's NVMe (1b36:0010) with one SR-IOV VF,
# the NEC xHCI (1033:0194) with MSI and no MSI-X, Intel's 82574L e1000e
# (8086:10d3). "vf:ID" asks the guest to create a VF on the PF with that id
# and bind the VF (guest.find_devices); the PF stays on pci-pf-stub.
NVME_ID = "1b36:0010"
NVME_VF = f"vf:{NVME_ID}"
XHCI_NEC_ID = "1033:0194"
E1000E_ID = "8086:10d3"
# nec-usb-xhci's MSI capability offers 16 vectors (XHCI_MAXINTRS); its
# "intrs" property had no effect in QEMU 7.2.22 (intrs=8 still gave 16 in a
# lab guest).
XHCI_MSI_VECTORS = 16


@dataclass(frozen=True)
class DevicePreset:
    """Emulated PCI devices for the guest and the vendor:device ids to bind."""

    name: str
    description: str
    qemu_args: tuple[str, ...]
    ids: tuple[str, ...]
    # Fewer vCPUs than this and the devices cannot all be used: an x86 CPU has
    # about 200 interrupt vectors, so 2048 MSI-X vectors need 16 of them (with
    # 2 the kernel refuses the enable with ENOSPC). A guest gets at least this.
    min_cpus: int = 1


def _preset(name: str, vectors: int, description: str, min_cpus: int = 1) -> DevicePreset:
    return DevicePreset(
        name=name,
        min_cpus=min_cpus,
        description=description,
        qemu_args=(
            "-device",
            "edu",
            # A root port makes the virtio device a PCIe endpoint, so vfio-pci
            # offers ERR and REQ interrupts for it; aer=on adds the AER cap.
            "-device",
            f"pcie-root-port,id={ROOT_PORT_ID},chassis=1,slot=1",
            "-device",
            f"virtio-rng-pci,bus={ROOT_PORT_ID},disable-legacy=on,aer=on,vectors={vectors}",
        ),
        ids=(EDU_ID, VIRTIO_RNG_ID),
    )


# NVMe SR-IOV in QEMU 7.2 (hw/nvme/ctrl.c nvme_check_params) needs a
# subsystem and flexible resources: vq_flexible >= 2 * max_vfs,
# max_ioqpairs >= vq_flexible + 2, vi_flexible >= max_vfs, msix_qsize >=
# vi_flexible + 1. The PF sits behind its own root port (a PCIe bus for the
# SR-IOV extended capability; the VF appears there as function 1).
_NVME_VF_ARGS = (
    "-device",
    "pcie-root-port,id=vfio_hil_rp_nvme,chassis=2,slot=2",
    "-device",
    "nvme-subsys,id=vfio_hil_nvme_subsys",
    "-device",
    "nvme,bus=vfio_hil_rp_nvme,serial=vfiohil0,subsys=vfio_hil_nvme_subsys,"
    "sriov_max_vfs=1,sriov_vq_flexible=2,sriov_vi_flexible=1,max_ioqpairs=4,msix_qsize=2",
)
# nec-usb-xhci rather than qemu-xhci: only the NEC variant has the msi/msix
# switches; msi_init() gets one vector per interrupter (hw/usb/hcd-xhci-pci.c).
_XHCI_MSI_ARGS = ("-device", "nec-usb-xhci,msi=on,msix=off")
_E1000E_ARGS = (
    "-device",
    "pcie-root-port,id=vfio_hil_rp_nic,chassis=3,slot=3",
    "-device",
    "e1000e,bus=vfio_hil_rp_nic",
)


def _kinds(name: str, description: str, *parts: tuple[tuple[str, ...], str]) -> DevicePreset:
    return DevicePreset(
        name=name,
        description=description,
        qemu_args=tuple(a for args, _ in parts for a in args),
        ids=tuple(i for _, i in parts),
    )


_NVME_VF = (_NVME_VF_ARGS, NVME_VF)
_XHCI_MSI = (_XHCI_MSI_ARGS, XHCI_NEC_ID)
_E1000E = (_E1000E_ARGS, E1000E_ID)

PRESETS: dict[str, DevicePreset] = {
    "default": _preset(
        "default",
        64,
        "edu 1234:11e8 (INTx, 1 MSI vector) and virtio-rng 1af4:1044 behind a PCIe root "
        "port (INTx, MSI-X 64, ERR, REQ)",
    ),
    # 2048 is the MSI-X maximum (11-bit table size); QEMU refuses 2049.
    "scale": _preset(
        "scale",
        2048,
        "as default, with a 2048-vector MSI-X virtio-rng (the PCI maximum); 16 vCPUs",
        min_cpus=16,
    ),
    "nvme-vf": _kinds(
        "nvme-vf",
        "an SR-IOV VF of QEMU's nvme 1b36:0010 (no INTx, MSI-X); the PF on pci-pf-stub",
        _NVME_VF,
    ),
    "xhci-msi": _kinds(
        "xhci-msi",
        f"nec-usb-xhci 1033:0194 with MSI ({XHCI_MSI_VECTORS} vectors) and no MSI-X",
        _XHCI_MSI,
    ),
    "e1000e": _kinds(
        "e1000e",
        "e1000e 8086:10d3 behind a PCIe root port (INTx, MSI, MSI-X 5)",
        _E1000E,
    ),
    "kinds": _kinds(
        "kinds",
        "nvme-vf, xhci-msi and e1000e in one guest",
        _NVME_VF,
        _XHCI_MSI,
        _E1000E,
    ),
}

# Kernel parameters for every guest. loglevel=6 puts notice-level lines (the
# per-test markers) and all warnings on the console; printk.time=1
# timestamps them (the scanner trusts only timestamped text);
# printk.devkmsg=on stops /dev/kmsg rate-limiting the markers; a 60 s hung
# task timeout reports a stuck D state well before the lab timeout.
# no_timer_check: on a loaded 2-core host a TCG guest is too slow for the
# IO-APIC timer check, and 6.1 panicked at boot ("timer doesn't work through
# Interrupt-remapped IO-APIC"); the check is for broken hardware, not QEMU.
KERNEL_ARGS = (
    "no_timer_check",
    "loglevel=6",
    "printk.time=1",
    "printk.devkmsg=on",
    "sysctl.kernel.hung_task_timeout_secs=60",
)

# The guest's platform IOMMU. "intel": an emulated VT-d with interrupt
# remapping, so vfio-pci devices get IOMMU groups (/dev/vfio/N, type1
# containers, iommufd). "none": no IOMMU at all; vfio-pci then binds only in
# NOIOMMU mode (/dev/vfio/noiommu-N), which needs CONFIG_VFIO_NOIOMMU (no
# Debian kernel has it: the lab's own build does) and the module parameter.
GuestIommu = Literal["intel", "none"]
GUEST_IOMMUS: tuple[GuestIommu, ...] = ("intel", "none")
_IOMMU_KERNEL_ARGS: dict[GuestIommu, tuple[str, ...]] = {
    "intel": ("intel_iommu=on",),
    "none": ("vfio.enable_unsafe_noiommu_mode=1",),
}


def kernel_args(iommu: GuestIommu = "intel") -> tuple[str, ...]:
    """The guest's kernel command line for this platform IOMMU."""
    return (*_IOMMU_KERNEL_ARGS[iommu], *KERNEL_ARGS)


# A second, read-only 9p share of the host's root. The guest mounts it with
# cache=loose and binds the interpreter, venv and sources from it: virtme-ng's
# own root mount is uncached, which made pytest's start-up take minutes
# under TCG (guest.cache_host_reads).
HOST_SHARE_TAG = "vfio_hil_root"
HOST_SHARE_ARGS = (
    "-fsdev",
    f"local,id={HOST_SHARE_TAG},path=/,security_model=none,readonly=on,multidevs=remap",
    "-device",
    f"virtio-9p-pci,fsdev={HOST_SHARE_TAG},mount_tag={HOST_SHARE_TAG}",
)


# The device agent's channel (vfio_hil._lab.agent): a virtio-serial port
# whose host end is a unix socket QEMU listens on.
AGENT_PORT = "vfio_hil.agent"


def agent_port_args(socket_path: Path) -> list[str]:
    """QEMU options for the agent's port; wait=off: QEMU starts without a client."""
    return [
        "-chardev",
        f"socket,id=vh_agent,path={socket_path},server=on,wait=off",
        "-device",
        "virtio-serial-pci,id=vh_agent_bus",
        "-device",
        f"virtserialport,bus=vh_agent_bus.0,chardev=vh_agent,name={AGENT_PORT}",
    ]


def get_preset(name: str) -> DevicePreset:
    """The preset called ``name`` or a ``LabError`` listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise LabError(f"unknown device preset {name!r}; known: {', '.join(PRESETS)}") from None


def machine_args(accel: Accel, iommu: GuestIommu = "intel") -> list[str]:
    """Machine/IOMMU options appended after virtme-run's own QEMU options.

    virtme-run picks ``-machine q35`` only without KVM, so q35 is forced here
    (QEMU merges repeated ``-machine`` options). Interrupt remapping with KVM
    needs the split irqchip; under TCG the property does not apply.
    """
    vtd = ["-device", "intel-iommu,intremap=on"] if iommu == "intel" else []
    if accel == "kvm":
        return ["-machine", "q35,kernel-irqchip=split" if vtd else "q35", *vtd]
    # Multi-threaded TCG can run a stale translation of kernel code that
    # another vCPU just patched with text_poke_bp(): seen as a spurious
    # "Oops: int3" in sched_clock_cpu while booting 6.12 with 2 vCPUs.
    # One TCG thread for all vCPUs keeps SMP without that race.
    return ["-machine", "q35", "-accel", "tcg,thread=single", *vtd]


def find_qemu() -> str:
    """Path of ``qemu-system-x86_64`` (``VFIO_HIL_QEMU`` overrides it)."""
    chosen = os.environ.get("VFIO_HIL_QEMU")
    if chosen and not (os.path.isfile(chosen) and os.access(chosen, os.X_OK)):
        raise LabError(
            f"VFIO_HIL_QEMU={chosen}: not an executable file; point it at a "
            "qemu-system-x86_64, or unset it to use the one on PATH"
        )
    found = chosen or shutil.which("qemu-system-x86_64")
    if not found:
        raise LabError("qemu-system-x86_64 not found: apt-get install qemu-system-x86")
    return found


def find_virtme_run() -> list[str]:
    """The command that starts ``virtme-run``, preferring this interpreter's copy."""
    beside = Path(sys.executable).parent / "virtme-run"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    on_path = shutil.which("virtme-run")
    if on_path:
        return [on_path]
    if importlib.util.find_spec("virtme") is None:
        raise LabError(
            "virtme-ng not found: pip install 'vfio-hil[lab]' (or pip install virtme-ng)"
        )
    # `python -m virtme.commands.run` would drop main()'s return value.
    return [
        sys.executable,
        "-c",
        "import sys; from virtme.commands.run import main; sys.exit(main())",
    ]


def build_virtme_argv(
    *,
    virtme_run: Sequence[str],
    qemu: str,
    vmlinuz: Path,
    accel: Accel,
    preset: DevicePreset,
    guest_script: Path,
    rwdirs: Sequence[Path],
    cwd: Path,
    memory: str = "2G",
    cpus: int = 2,
    iommu: GuestIommu = "intel",
    extra_qemu_args: Sequence[str] = (),
    extra_kernel_args: Sequence[str] = (),
) -> list[str]:
    """The full ``virtme-run`` argv for one guest (pure: touches nothing).

    ``--show-boot-console`` sends the kernel console to virtme-run's stderr,
    which the host scans for Oopses; ``--qemu-opts`` must come last because
    it swallows the rest of the argv.
    """
    argv = [
        *virtme_run,
        "--kimg",
        str(vmlinuz),
        "--mods",
        "auto",
        "--qemu-bin",
        qemu,
        "--disable-microvm",
        "--memory",
        memory,
        "--cpus",
        str(cpus),
        "--cwd",
        str(cwd),
        "--show-boot-console",
    ]
    if accel == "tcg":
        argv.append("--disable-kvm")
    for d in rwdirs:
        argv += ["--rwdir", str(d)]
    for karg in (*kernel_args(iommu), *extra_kernel_args):
        argv += ["-a", karg]
    argv += ["--script-sh", f"exec /bin/sh {guest_script}"]
    argv += ["--qemu-opts", *machine_args(accel, iommu), *HOST_SHARE_ARGS, *preset.qemu_args]
    argv += extra_qemu_args
    return argv


def kvm_probe_argv(qemu: str, vmlinuz: Path) -> list[str]:
    """QEMU argv that boots ``vmlinuz`` under KVM just far enough to print."""
    return [
        qemu,
        "-machine",
        "q35,accel=kvm",
        "-cpu",
        "host",
        "-m",
        "256M",
        "-nodefaults",
        "-display",
        "none",
        "-no-reboot",
        "-monitor",
        "none",
        "-serial",
        "stdio",
        "-kernel",
        str(vmlinuz),
        "-append",
        "console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1",
    ]


def probe_kvm(qemu: str, vmlinuz: Path, timeout: float = KVM_PROBE_TIMEOUT_S) -> str | None:
    """Return ``None`` if KVM boots a kernel, else why it cannot be used.

    Opening /dev/kvm is not enough: under some nested hypervisors QEMU aborts
    ('failed to set MSR') or the vCPU stalls before the kernel prints. The
    probe boots the real kernel with an early serial console and waits for
    its ``Linux version`` banner, which takes well under a second on working
    KVM (about 3 s even under TCG).
    """
    if not os.path.exists("/dev/kvm"):
        return "/dev/kvm does not exist"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "no read/write access to /dev/kvm"
    proc = subprocess.Popen(
        kvm_probe_argv(qemu, vmlinuz),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    try:
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([proc.stdout], [], [], left)
            if not ready:
                break
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            seen = (seen + chunk)[-65536:]
            if b"Linux version" in seen:
                return None
    finally:
        kill_group(proc)
        proc.stdout.close()
    tail = seen.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
    return f"a KVM guest printed no kernel banner within {timeout:.0f} s ({tail[0][:120]})"


_KILL_GRACE_S = 5.0


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM then SIGKILL virtme-run's process group (it contains QEMU)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=_KILL_GRACE_S)
            os.killpg(proc.pid, 0)  # anyone left in the group (QEMU)?
        except ProcessLookupError:
            break
        except subprocess.TimeoutExpired:
            continue
    proc.wait(timeout=_KILL_GRACE_S)


def choose_accel(requested: str, probe: str | None) -> tuple[Accel, str | None]:
    """Decide the accelerator from the request and the KVM probe result.

    Returns the accelerator and a note to print when ``auto`` fell back.
    ``kvm`` with a failed probe is an error, not a silent slowdown.
    """
    if requested == "tcg":
        return "tcg", None
    if requested not in ("auto", "kvm"):
        raise LabError(f"unknown accelerator {requested!r}: use auto, kvm or tcg")
    if probe is None:
        return "kvm", None
    if requested == "kvm":
        raise LabError(f"--accel kvm, but KVM is unusable: {probe}")
    return "tcg", f"KVM unusable ({probe}); falling back to TCG (software emulation, slower)"
