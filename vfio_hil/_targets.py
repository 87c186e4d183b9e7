"""Targets: what a run is pointed at, how it is named, opened and held.

Spec syntax, written down once here:

* ``0000:01:00.0`` (or ``01:00.0``): a real device bound to vfio-pci;
* ``sim:PRESET[:VECTORS][@KERNEL]``: a simulated one, ``PRESET`` one of
  ``SIM_PRESETS``; ``:VECTORS`` sizes virtio_msix's MSI-X table (1-2048);
  ``@KERNEL`` a profile name (``6.12``) or an exact version (``6.1.50``);
* ``ssh://HOST/SPEC``: ``SPEC`` (either form above) on another machine,
  through a device agent started over SSH (``vfio_hil._agent.remote``);
* ``lab:KERNEL/DEVICE``: a device of a lab guest (``DEVICE`` an address, or
  ``edu`` or ``virtio``), booted at the first open and kept for the process
  (``vfio_hil._lab.sessions``);
* ``?iommu=MODE`` after an address or a lab device: how the device is
  opened, ``MODE`` one of ``IOMMU_PATHS``: ``group`` (container + group,
  also a NOIOMMU group), ``cdev`` (/dev/vfio/devices/vfioN + iommufd),
  ``auto`` (cdev where there is one); on a lab device also ``noiommu``: a
  guest booted without an IOMMU.  Without it, ``VFIO_HIL_IOMMU`` (or the
  ``--vfio-iommu``/``--iommu`` option) decides, else ``auto``.

``select_specs`` is the one place that decides which option, environment
variable or ini key names the targets.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from vfio_hil._device import Device
from vfio_hil._errors import VfioHilError
from vfio_hil._model.profile import DEFAULT_KERNEL, KernelProfile, kernel_spec

__all__ = [
    "DEFAULT_TARGETS",
    "IOMMU_PATHS",
    "SIM_PRESETS",
    "Selection",
    "Target",
    "env_list",
    "parse_target",
    "select_specs",
    "targets_from_env",
    "with_iommu",
]

MAX_MSIX = 2048
# How a real device is opened (``open_device``'s iommu); noiommu: lab only.
IOMMU_PATHS = ("auto", "group", "cdev", "noiommu")


def _edu(kernel: KernelProfile, vectors: int | None) -> Device:
    from vfio_hil._sim.device import SimDevice

    return SimDevice.edu(kernel=kernel)


def _virtio(default: int) -> Callable[[KernelProfile, int | None], Device]:
    def make(kernel: KernelProfile, vectors: int | None) -> Device:
        from vfio_hil._sim.device import SimDevice

        return SimDevice.virtio_msix(vectors or default, kernel=kernel)

    return make


def _fixed(preset: str) -> Callable[[KernelProfile, int | None], Device]:
    def make(kernel: KernelProfile, vectors: int | None) -> Device:
        from vfio_hil._sim.device import SimDevice

        return getattr(SimDevice, preset)(kernel=kernel)  # type: ignore[no-any-return]

    return make


# name -> (factory, takes :VECTORS)
SIM_PRESETS: dict[str, tuple[Callable[[KernelProfile, int | None], Device], bool]] = {
    "edu": (_edu, False),
    "virtio_msix": (_virtio(64), True),
    "virtio_msix_2048": (_virtio(2048), False),
    # The lab's device kinds nvme-vf, xhci-msi, e1000e (docs/lab.md, "Device presets").
    "nvme_vf": (_fixed("nvme_vf"), False),
    "xhci_msi": (_fixed("xhci_msi"), False),
    "e1000e": (_fixed("e1000e"), False),
}
DEFAULT_TARGETS = ("sim:edu", "sim:virtio_msix")
_FORMS = "an address like 0000:01:00.0, sim:PRESET[:VECTORS][@KERNEL], or ssh://HOST/either"


@dataclass(frozen=True)
class Target:
    """One device to run on: its canonical spec and how to open it.

    ``eventfd``: makes an eventfd where the device is (``initval``,
    ``semaphore``); None: this process's ``EventFd`` will do."""

    spec: str
    simulated: bool
    open: Callable[[], Device]
    eventfd: Callable[[int, bool], Any] | None = None

    def __str__(self) -> str:
        return self.spec

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the target exclusively: a real device across processes (a lock
        file); a simulated one belongs to its process and needs no lock."""
        if self.simulated:
            yield
            return
        from vfio_hil._locks import device_lock

        with device_lock(self.spec):
            yield


def _sim(spec: str) -> Target:
    body, at, kernel_text = spec.removeprefix("sim:").partition("@")
    preset, colon, vectors_text = body.partition(":")
    entry = SIM_PRESETS.get(preset)
    if entry is None:
        raise VfioHilError(
            f"unknown simulated device {preset!r} in {spec!r}",
            f"use one of: {', '.join('sim:' + p for p in SIM_PRESETS)} (optionally @KERNEL)",
        )
    factory, sized = entry
    vectors: int | None = None
    if colon:
        if not sized:
            raise VfioHilError(
                f"{spec!r}: sim:{preset} has a fixed size", f"write sim:{preset}[@KERNEL]"
            )
        if (
            not (vectors_text.isascii() and vectors_text.isdigit())
            or not 1 <= int(vectors_text) <= MAX_MSIX
        ):
            raise VfioHilError(
                f"bad MSI-X vector count {vectors_text!r} in {spec!r}",
                f"give 1 to {MAX_MSIX}, e.g. sim:virtio_msix:8@6.12",
            )
        vectors = int(vectors_text)
    if at and not kernel_text:
        raise VfioHilError(f"{spec!r} names no kernel after '@'", "write e.g. sim:edu@6.12")
    try:
        kernel = kernel_spec(kernel_text or DEFAULT_KERNEL)
    except ValueError as err:
        raise VfioHilError(f"in {spec!r}: {err}", "fix the part after '@'") from None
    canonical = f"sim:{preset}{':' + str(vectors) if colon else ''}@{kernel_text or DEFAULT_KERNEL}"
    return Target(canonical, True, lambda: factory(kernel, vectors))


def _ssh(spec: str) -> Target:
    host, slash, remote = spec.removeprefix("ssh://").partition("/")
    if not host or not slash or not remote or remote.startswith("ssh://"):
        raise VfioHilError(
            f"{spec!r}: write ssh://HOST/ADDRESS or ssh://HOST/sim:PRESET",
            "HOST as ssh takes it (user@host, an ssh_config alias), e.g. "
            "ssh://lab-box/0000:01:00.0",
        )
    inner = parse_target(remote)  # the form is checked here, the device there

    def open_remote() -> Device:
        from vfio_hil._agent.remote import ssh_channel

        return ssh_channel(host).open(inner.spec)

    def eventfd(initval: int, semaphore: bool) -> Any:
        from vfio_hil._agent.remote import ssh_channel

        return ssh_channel(host).eventfd(initval, semaphore)

    return Target(f"ssh://{host}/{inner.spec}", inner.simulated, open_remote, eventfd)


def _split_iommu(spec: str, body: str, *, lab: bool) -> tuple[str, str | None]:
    """``(body, mode)`` of ``BODY[?iommu=MODE]``; mode None when none is given
    (``open_device`` then asks ``VFIO_HIL_IOMMU``)."""
    body, query, value = body.partition("?")
    if not query:
        return body, None
    key, _, mode = value.partition("=")
    allowed = IOMMU_PATHS if lab else IOMMU_PATHS[:3]
    if key != "iommu" or mode not in allowed:
        raise VfioHilError(
            f"{spec!r}: after '?' write iommu=MODE, MODE one of {', '.join(allowed)}",
            "e.g. 0000:01:00.0?iommu=cdev" + (", lab:iommufd/edu?iommu=noiommu" if lab else ""),
        )
    return body, mode


def _with_mode(spec: str, mode: str | None) -> str:
    return spec if mode in (None, "auto") else f"{spec}?iommu={mode}"


def _lab(spec: str) -> Target:
    body, mode = _split_iommu(spec, spec.removeprefix("lab:"), lab=True)
    kernel, slash, which = body.partition("/")
    if not kernel or not slash or not which:
        raise VfioHilError(
            f"{spec!r}: write lab:KERNEL/DEVICE",
            "e.g. lab:6.12/edu, lab:7/virtio, lab:6.1/0000:00:0b.0",
        )
    from vfio_hil._lab.sessions import DEVICE_NAMES

    if which not in DEVICE_NAMES:
        from vfio_hil._host.sysfs import parse_address

        try:
            which = parse_address(which)
        except VfioHilError:
            raise VfioHilError(
                f"{spec!r}: {which!r} is no lab device",
                f"name one of {', '.join(DEVICE_NAMES)} or a PCI address, e.g. lab:{kernel}/edu",
            ) from None

    # Without an IOMMU the guest differs (booted so), and its group path is the one there is.
    guest_iommu: Literal["intel", "none"] = "none" if mode == "noiommu" else "intel"
    path = "group" if mode == "noiommu" else mode

    def open_lab() -> Device:
        from vfio_hil._lab.sessions import lab_device, lab_session, preset_of

        address = lab_device(kernel, which, guest_iommu)
        lab = lab_session(kernel, guest_iommu, preset_of(which))
        return lab.channel.open(_with_mode(address, path))

    def eventfd(initval: int, semaphore: bool) -> Any:
        from vfio_hil._lab.sessions import lab_session, preset_of

        lab = lab_session(kernel, guest_iommu, preset_of(which))
        return lab.channel.eventfd(initval, semaphore)

    return Target(_with_mode(f"lab:{kernel}/{which}", mode), False, open_lab, eventfd)


def parse_target(spec: str) -> Target:
    """A Target for ``spec``; a VfioHilError that lists the forms if it is none."""
    if not isinstance(spec, str):
        raise VfioHilError(f"a target spec must be text, not {spec!r}", f"give {_FORMS}")
    text = spec.strip()
    if not text:
        raise VfioHilError("empty target spec", f"give {_FORMS}")
    if text.startswith("sim:"):
        return _sim(text)
    if text.startswith("ssh://"):
        return _ssh(text)
    if text.startswith("lab:"):
        return _lab(text)
    preset = text.partition("@")[0].partition(":")[0]
    if preset in SIM_PRESETS:  # "edu" for "sim:edu"
        raise VfioHilError(
            f"{text!r} is no PCI address: a simulated device is written sim:{text}",
            f"give {_FORMS}",
        )
    from vfio_hil._host.sysfs import parse_address

    body, mode = _split_iommu(text, text, lab=False)
    address = parse_address(body)

    def open_real() -> Device:
        from vfio_hil._host import open_device

        return open_device(address, iommu=mode)

    return Target(_with_mode(address, mode), False, open_real)


def with_iommu(spec: str, mode: str | None) -> str:
    """``spec`` opened by ``mode`` unless it names its own: what ``--vfio-iommu``,
    ``--iommu`` and ``VFIO_HIL_IOMMU`` do to each real or lab target (a
    simulated device has no open path, and is left alone)."""
    if mode is None or mode == "auto" or "?" in spec or "sim:" in spec:
        return spec
    if mode not in IOMMU_PATHS:
        raise VfioHilError(f"unknown iommu path {mode!r}", f"use one of {', '.join(IOMMU_PATHS)}")
    if mode == "noiommu" and not spec.startswith("lab:"):
        # A real device is in NOIOMMU mode or not: the group path opens it either way.
        mode = "group"
    return f"{spec}?iommu={mode}"


def env_list(name: str, environ: Mapping[str, str] | None = None) -> list[str] | None:
    """A comma-separated environment variable's entries; None when it is unset."""
    env = os.environ if environ is None else environ
    if name not in env:
        return None
    return [item.strip() for item in env[name].split(",") if item.strip()]


@dataclass(frozen=True)
class Selection:
    specs: list[str]
    source: str  # where they came from, for messages


def _sim_spec(text: str) -> str:
    return text if text.startswith("sim:") else f"sim:{text}"


def select_specs(
    devices: Sequence[str] = (),
    sims: Sequence[str] = (),
    ini_devices: Sequence[str] = (),
    *,
    require: bool = False,
    iommu: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Selection:
    """Which targets a run uses; the precedence, written down once:

    real devices: ``devices`` (``--vfio-device``) beat ``VFIO_HIL_DEVICES``
    beat ``ini_devices`` (the ``vfio_devices`` ini key); simulated ones:
    ``sims`` (``--vfio-sim``) beat ``VFIO_HIL_SIM``, and are added to the real
    ones.  With neither, the default simulations.  A ``VFIO_HIL_DEVICES``
    that is set but names no device is an error under ``require`` or
    ``CI=true``: a CI job must not pass on simulations by accident; so is a
    ``VFIO_HIL_SIM`` that is set but names none (unless ``sims`` override it).
    The open path: ``iommu`` (``--vfio-iommu``) beats ``VFIO_HIL_IOMMU``;
    a spec's own ``?iommu=`` beats both.
    """
    env = os.environ if environ is None else environ
    chosen = _select(devices, sims, ini_devices, require=require, env=env)
    mode = iommu or env.get("VFIO_HIL_IOMMU") or None
    where = "--vfio-iommu" if iommu else "VFIO_HIL_IOMMU"
    if mode is not None and mode not in IOMMU_PATHS:
        raise VfioHilError(
            f"{where}={mode!r} is no iommu path", f"use one of {', '.join(IOMMU_PATHS)}"
        )
    return Selection([with_iommu(s, mode) for s in chosen.specs], chosen.source)


def _select(
    devices: Sequence[str],
    sims: Sequence[str],
    ini_devices: Sequence[str],
    *,
    require: bool,
    env: Mapping[str, str],
) -> Selection:
    env_devices = env_list("VFIO_HIL_DEVICES", env)
    strict = require or env.get("CI", "").lower() == "true"
    if env_devices == [] and strict:
        raise VfioHilError(
            f"VFIO_HIL_DEVICES is set ({env['VFIO_HIL_DEVICES']!r}) but names no device",
            "give comma-separated PCI addresses, or unset it to run the simulations",
        )
    if not sims and env_list("VFIO_HIL_SIM", env) == [] and strict:
        raise VfioHilError(
            f"VFIO_HIL_SIM is set ({env['VFIO_HIL_SIM']!r}) but names no simulated device",
            "give comma-separated presets such as edu@6.1,virtio_msix:8, or unset it",
        )
    chosen_sims = [_sim_spec(s) for s in sims] or [
        _sim_spec(s) for s in env_list("VFIO_HIL_SIM", env) or []
    ]
    if devices:
        return Selection([*devices, *chosen_sims], "--vfio-device")
    if env_devices:
        return Selection([*env_devices, *chosen_sims], "VFIO_HIL_DEVICES")
    if ini_devices:
        return Selection([*ini_devices, *chosen_sims], "the vfio_devices ini key")
    if sims:
        return Selection(chosen_sims, "--vfio-sim")
    if chosen_sims:
        return Selection(chosen_sims, "VFIO_HIL_SIM")
    return Selection(list(DEFAULT_TARGETS), "the default simulated devices")


def targets_from_env(environ: Mapping[str, str] | None = None) -> list[Target]:
    """The targets the environment names (``select_specs`` with no options)."""
    return [parse_target(s) for s in select_specs(environ=environ).specs]
