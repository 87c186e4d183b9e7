"""The selftests' IOMMU modes (lib/iommu.c) and which of them a kernel and device offer.

Chosen from what the running kernel exposes, never from its version:
``/dev/vfio/vfio`` for the type1 containers, ``/dev/iommu`` (CONFIG_IOMMUFD)
for iommufd's compat containers, and the device's VFIO cdev as well for
plain iommufd.  A mode the kernel lacks is a skip with the reason.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["ALL_MODES", "MODE_KINDS", "mode_of_variant", "unavailable"]

# lib/iommu.c's iommu_modes[], in its order.
ALL_MODES = (
    "vfio_type1_iommu",
    "vfio_type1v2_iommu",
    "iommufd_compat_type1",
    "iommufd_compat_type1v2",
    "iommufd",
)
# How a binary picks its mode (build.mode_kind): "variant" (each fixture
# variant is FIXTURE_VARIANT_ADD_ALL_IOMMU_MODES's mode[_name]), "default"
# (default_iommu_mode, set per item through build.MODE_ENV), "iommufd"
# (opens /dev/iommu and the cdev itself), "none".
MODE_KINDS = ("variant", "default", "iommufd", "none")


def mode_of_variant(variant: str) -> str | None:
    """The mode a variant of FIXTURE_VARIANT_ADD_ALL_IOMMU_MODES names, or None.

    >>> mode_of_variant("iommufd_compat_type1v2_anonymous_hugetlb_1gb")
    'iommufd_compat_type1v2'
    >>> mode_of_variant("msix") is None
    True
    """
    hits = [m for m in ALL_MODES if variant == m or variant.startswith(m + "_")]
    return max(hits, key=len) if hits else None


def _group(bdf: str, root: Path) -> tuple[str | None, str | None]:
    """(the device's /dev/vfio group node, why there is none)."""
    link = root / "sys/bus/pci/devices" / bdf / "iommu_group"
    if not link.exists():
        return None, f"{bdf} has no IOMMU group"
    number = Path(str(link.readlink()) if link.is_symlink() else str(link)).name
    for node in (f"dev/vfio/{number}", f"dev/vfio/noiommu-{number}"):
        if (root / node).exists():
            if "noiommu" in node:
                return None, f"{bdf} is in a NOIOMMU group: the selftests map DMA through an IOMMU"
            return node, None
    return None, f"{bdf}'s group {number} has no /dev/vfio/{number}: is it bound to vfio-pci?"


def unavailable(mode: str, bdf: str, root: Path = Path("/")) -> str | None:
    """Why ``mode`` cannot run on ``bdf`` under this kernel, or None."""
    if mode == "iommufd":
        if not (root / "dev/iommu").exists():
            return "no /dev/iommu: this kernel has no IOMMUFD (CONFIG_IOMMUFD)"
        cdevs = root / "sys/bus/pci/devices" / bdf / "vfio-dev"
        if not cdevs.is_dir() or not any(p.name.startswith("vfio") for p in cdevs.iterdir()):
            return f"{bdf} has no VFIO cdev: this kernel has no CONFIG_VFIO_DEVICE_CDEV"
        return None
    if mode.startswith("iommufd_compat"):
        if not (root / "dev/iommu").exists():
            return "no /dev/iommu: this kernel has no IOMMUFD (CONFIG_IOMMUFD)"
    elif not (root / "dev/vfio/vfio").exists():
        return "no /dev/vfio/vfio: this kernel has no VFIO container (CONFIG_VFIO_CONTAINER)"
    return _group(bdf, root)[1]
