"""Kernel profiles: which vfio-pci behaviour a given kernel version has.

Each flag is one upstream change (commit named beside it) whose effect on
SET_IRQS/GET_IRQ_INFO is observable from user space.  ``kernel_profile``
maps a version string (``uname -r``, ``uname -v`` or a bare ``6.12.117``) to
the flags, following the stable backports listed in the spec's section 11.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DEFAULT_KERNEL", "PROFILES", "KernelProfile", "kernel_profile", "kernel_spec"]


@dataclass(frozen=True)
class KernelProfile:
    """The behaviour switches of one kernel; see docs/model.md for each."""

    name: str
    version: tuple[int, int, int]
    # 63972f63a63f "Remove interrupt context counter" (v6.5): per-vector
    # contexts in an xarray instead of ctx[num_ctx]; dynamic MSI-X possible.
    dyn_ctx: bool
    # 18c198c96a81 "Create persistent INTx handler" (v6.9, 6.1.84, 6.6.24,
    # 6.8.3): eventfd looked up before any change; NULL trigger is legal.
    persistent_intx: bool
    # 98693e0897f7 "Use RCU for error/request triggers" (v6.19, in 6.12.117):
    # ERR/REQ EVENTFD with fd <= -2 is EINVAL instead of a no-op.
    rcu_err_req: bool
    # 4e3c1fc8abcb "Remove the pcie check for VFIO_PCI_ERR_IRQ_INDEX" (7.3).
    err_without_pcie: bool

    def __str__(self) -> str:
        return self.name


def _profile(name: str, version: tuple[int, int, int]) -> KernelProfile:
    major_minor = version[:2]
    patch = version[2]
    persistent = (
        major_minor >= (6, 9)
        or (major_minor == (6, 1) and patch >= 84)
        or (major_minor == (6, 6) and patch >= 24)
        or (major_minor == (6, 7) and patch >= 12)
        or (major_minor == (6, 8) and patch >= 3)
    )
    rcu = major_minor >= (6, 19) or (major_minor == (6, 12) and patch >= 117)
    return KernelProfile(
        name=name,
        version=version,
        dyn_ctx=major_minor >= (6, 5),
        persistent_intx=persistent,
        rcu_err_req=rcu,
        err_without_pcie=major_minor >= (7, 3),
    )


# The kernels the lab boots and CI checks.  "6.1" is Debian bookworm's
# 6.1.141 and later (IRQ_NOTCONNECTED backport, persistent INTx handler).
PROFILES: dict[str, KernelProfile] = {
    "6.1": _profile("6.1", (6, 1, 141)),
    "6.12": _profile("6.12", (6, 12, 117)),
    "7.2": _profile("7.2", (7, 2, 0)),
    "7.3": _profile("7.3", (7, 3, 0)),
}
PROFILES["7"] = PROFILES["7.3"]
DEFAULT_KERNEL = "6.12"  # what a simulated device runs when no kernel is named

_DEBIAN_UPSTREAM = re.compile(r"Debian (\d+)\.(\d+)\.(\d+)")
_RELEASE = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")
# What may follow the version in uname -r: "-41-amd64", "+deb13-amd64", "-rc1", a space.
_RELEASE_END = re.compile(r"$|[-+~ _]")


def _known(triple: tuple[int, int, int], given: str) -> tuple[int, int, int]:
    """``triple`` if the model has rules for it (6.1 up to the newest profile's
    major.minor), else a ValueError: a kernel it knows nothing of (1.0, 99.99)
    must not quietly get some profile."""
    newest = max(p.version for p in PROFILES.values())
    if triple >= (6, 1, 0) and triple[:2] <= newest[:2]:
        return triple
    raise ValueError(
        f"kernel {given!r} is outside what the model knows (6.1 to {newest[0]}.{newest[1]}.x): "
        f"name one of {', '.join(PROFILES)}"
    )


def kernel_profile(version: str) -> KernelProfile:
    """The profile for ``version``: a profile name, ``uname -r`` or ``uname -v``.

    Debian's ``uname -r`` is an ABI name (``6.1.0-41-amd64``) whose third
    number is not the upstream patch level; ``uname -v`` carries the real one
    (``... Debian 6.1.158-1 ...``).  An ABI name of a 6.1 kernel is taken as
    bookworm's current 6.1 (>= 6.1.141), as the project supports no older.
    """
    if not isinstance(version, str):
        raise TypeError(
            f"kernel must be a str such as '6.12' or a uname -r string, not {version!r}"
        )
    text = version.strip()
    if text in PROFILES:
        return PROFILES[text]
    found = _DEBIAN_UPSTREAM.search(text)
    if found:
        triple = (int(found[1]), int(found[2]), int(found[3]))
        return _profile(".".join(map(str, triple)), _known(triple, version))
    match = _RELEASE.match(text)
    if not match or not _RELEASE_END.match(text[match.end() :]):
        raise ValueError(
            f"cannot read a kernel version from {version!r}; "
            f"give e.g. '6.12.117', a uname -r string, or one of {sorted(PROFILES)}"
        )
    _known((int(match[1]), int(match[2]), int(match[3] or 0)), version)
    major, minor = int(match[1]), int(match[2])
    patch = int(match[3] or 0)
    abi_name = "-" in text[match.end() :] and patch == 0
    if abi_name and (major, minor) == (6, 1):
        return _profile(f"6.1 ({text})", PROFILES["6.1"].version)
    if abi_name and (major, minor) == (6, 12):
        return _profile(f"6.12 ({text})", PROFILES["6.12"].version)
    return _profile(f"{major}.{minor}.{patch}", (major, minor, patch))


_FULL_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def kernel_spec(text: str) -> KernelProfile:
    """The profile a user names: a profile name (``6.12``) or an exact ``X.Y.Z``
    between the oldest and the newest kernel the model knows (6.1.0 to 7.3.x).

    Anything else is a ValueError that lists the accepted forms: a typo must
    not silently become some other kernel.
    """
    name = text.strip()
    if name in PROFILES:
        return PROFILES[name]
    match = _FULL_VERSION.match(name)
    newest = max(p.version for p in PROFILES.values())
    if match:
        triple = (int(match[1]), int(match[2]), int(match[3]))
        if triple >= (6, 1, 0) and triple[:2] <= newest[:2]:
            return _profile(name, triple)
    raise ValueError(
        f"unknown kernel {text!r}: use one of {', '.join(PROFILES)}, or an exact version "
        f"X.Y.Z from 6.1.0 to {newest[0]}.{newest[1]}.x"
    )
