"""The selftests as pytest items: binary x fixture x variant x test x mode x device.

``--vfio-selftests[=DIR]`` registers ``SelftestsPlugin``, which adds the
items at the start of ``pytest_collection_modifyitems`` (so ``-k`` and
``--deselect`` see them).  One item's id: ``vfio-selftests/BINARY::CASE[MODE-BDF]``,
``CASE`` being the harness's own ``FIXTURE.VARIANT.TEST``.  Listing runs each
binary once per device at collection (``-l`` comes after the binary's own
setup, which needs the device); a binary that gives up before its harness
(no selftests driver for the device, not an SR-IOV PF) becomes one item,
``main``, that reports why.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vfio_hil._selftests.build import MODE_ENV, SelftestsBuild, find_build
from vfio_hil._selftests.harness import Case, Outcome, list_cases, run_case
from vfio_hil._selftests.modes import ALL_MODES, mode_of_variant, unavailable
from vfio_hil._targets import Target

__all__ = [
    "RUN_TIMEOUT_S",
    "SelftestItem",
    "SelftestsPlugin",
    "configure",
    "item_specs",
    "load_build",
]

RUN_TIMEOUT_S = 300.0  # one case; the harness's own per-test limit is 30 s (memcpy_storm: 60)
PREFIX = "vfio-selftests"
_BDF = re.compile(r"[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]")
_HUGE = {
    "hugetlb_1gb": "/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages",
    "hugetlb_2mb": "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
}


class SelftestError(Exception):
    """A case that did not pass: its reason and the binary's whole output."""

    def __init__(self, outcome: Outcome, argv: str) -> None:
        super().__init__(outcome.reason)
        self.outcome, self.argv = outcome, argv


def load_build(where: str) -> SelftestsBuild:
    """The build ``--vfio-selftests`` names: ``auto`` (the newest cached) or a directory."""
    from vfio_hil._errors import VfioHilError
    from vfio_hil._lab.kernels import cache_dir
    from vfio_hil._selftests.build import load_dir

    build = (
        find_build(cache_dir())
        if where == "auto"
        else load_dir(Path(where).expanduser().absolute())
    )
    if build is None:
        place = f"in {cache_dir() / 'selftests'}" if where == "auto" else f"at {where}"
        raise VfioHilError(
            f"no VFIO selftests build {place}",
            "build them: vfio-hil selftests build [--source 7.2|PATH]",
        )
    return build


def _bdf(target: Target) -> str | None:
    address = target.spec.partition("?")[0]
    return address if not target.simulated and _BDF.fullmatch(address) else None


def item_specs(kind: str, cases: list[Case]) -> Iterator[tuple[Case | None, str]]:
    """(case, mode) per item of one binary: a mode variant names its mode; a binary
    on lib/iommu.c's default runs each case in every mode; no case: one item."""
    if not cases:
        yield None, "iommufd" if kind == "iommufd" else "any"
        return
    for case in cases:
        if kind == "default":
            yield from ((case, mode) for mode in ALL_MODES)
        elif kind == "variant":
            yield case, mode_of_variant(case.variant) or "any"
        else:
            yield case, "iommufd" if kind == "iommufd" else "any"


def _skip(reason: str) -> None:
    """A skip reported at the item (the binary and case), not at this module's line."""
    raise pytest.skip.Exception(reason, _use_item_location=True)


class SelftestsBinary(pytest.Collector):
    def __init__(
        self, *, build: SelftestsBuild, kind: str, targets: list[Target], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.build, self.kind, self.targets = build, kind, targets

    @property
    def binary(self) -> Path:
        return self.build.bin_dir / self.name.removeprefix(PREFIX + "/")

    def collect(self) -> Iterator[pytest.Item]:
        for target in self.targets:
            bdf = _bdf(target)
            assert bdf is not None
            # iommufd-only binaries list only where the cdev exists (their setup opens it).
            why = unavailable("iommufd", bdf) if self.kind == "iommufd" else None
            # What a binary sets up before its harness may use lib/iommu.c's default
            # mode (vfio_pci_driver_test does): one this kernel and device have.
            usable = [m for m in ALL_MODES if not unavailable(m, bdf)]
            env = {MODE_ENV: usable[-1]} if usable else {}  # iommufd first, as upstream
            if why:
                cases: list[Case] = []
                listing = Outcome("skipped", why, "")
            else:
                with target.hold():  # the binary's own setup opens the device
                    cases, listing = list_cases(self.binary, bdf, env)
            for case, mode in item_specs(self.kind, cases):
                name = f"{case.name if case else 'main'}[{mode}-{bdf}]"
                yield SelftestItem.from_parent(
                    self, name=name, case=case, mode=mode, target=target, bdf=bdf, listing=listing
                )


class SelftestItem(pytest.Item):
    """One case of one selftest binary, in one IOMMU mode, on one device."""

    def __init__(
        self,
        *,
        case: Case | None,
        mode: str,
        target: Target,
        bdf: str,
        listing: Outcome,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.case, self.mode, self.target, self.bdf, self.listing = case, mode, target, bdf, listing
        self.add_marker(pytest.mark.vfio_selftest)

    @property
    def binary(self) -> Path:
        assert isinstance(self.parent, SelftestsBinary)
        return self.parent.binary

    def runtest(self) -> None:
        self.user_properties += [("vfio_device", self.bdf), ("vfio_selftests_mode", self.mode)]
        if self.mode in ALL_MODES:
            why = unavailable(self.mode, self.bdf)
            if why:
                _skip(f"{self.mode}: {why}")
        if self.case is None:  # the binary gave up before its harness ran
            outcome = self.listing
        else:
            env = {MODE_ENV: self.mode} if self.mode in ALL_MODES else {}
            with self.target.hold():
                outcome = run_case(self.binary, self.case, self.bdf, env, RUN_TIMEOUT_S)
        if outcome.status == "skipped":
            _skip(outcome.reason + self._hint(outcome.reason))
        if outcome.status == "xfail":
            pytest.xfail(outcome.reason)
        if outcome.status != "passed":
            argv = (
                f"{self.binary.name} {'-r ' + self.case.name + ' ' if self.case else ''}{self.bdf}"
            )
            raise SelftestError(outcome, argv)

    def _hint(self, reason: str) -> str:
        for key, path in _HUGE.items():
            if not (self.case and key in self.case.variant and "mmap() failed" in reason):
                continue
            if not Path(path).parent.is_dir():
                # x86 offers 1 GiB pages after boot only with CONFIG_CONTIG_ALLOC
                # (CMA, or COMPACTION + MEMORY_ISOLATION) and the CPU's pdpe1gb.
                return (
                    f" (no {Path(path).parent}: this kernel or CPU has no such pages after boot; "
                    "needs CONFIG_CONTIG_ALLOC and pdpe1gb, or hugepagesz=1G hugepages=1 at boot)"
                )
            return f" (no free hugepage: reserve one, echo 1 > {path})"
        return ""

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        err = excinfo.value
        if isinstance(err, SelftestError):
            env = f"{MODE_ENV}={self.mode} " if self.case and self.mode in ALL_MODES else ""
            return f"{err.outcome.reason}\n$ {env}{err.argv}\n{err.outcome.output.rstrip()}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.binary, 0, f"{self.binary.name}::{self.name}"


class SelftestsPlugin:
    """Adds the selftests' items for the session's real devices."""

    def __init__(self, build: SelftestsBuild, targets: list[Target]) -> None:
        self.build, self.targets = build, targets

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, items: list[pytest.Item]
    ) -> None:
        for binary, kind in sorted(self.build.binaries.items()):
            node = SelftestsBinary.from_parent(
                session,
                name=f"{PREFIX}/{binary}",
                nodeid=f"{PREFIX}/{binary}",
                build=self.build,
                kind=kind,
                targets=self.targets,
            )
            items.extend(node.collect())

    def pytest_report_header(self) -> str:
        devices = ", ".join(_bdf(t) or t.spec for t in self.targets)
        notes = "".join(f"; {w}" for w in self.build.workarounds)
        return f"vfio selftests: {self.build.root} ({self.build.provenance}{notes}) on {devices}"


def configure(config: pytest.Config, where: str, targets: list[Target]) -> None:
    """``--vfio-selftests``: register the items' plugin for the real devices among ``targets``."""
    from vfio_hil._errors import VfioHilError

    real = [t for t in targets if _bdf(t)]
    if not real:
        raise VfioHilError(
            "--vfio-selftests needs a PCI device bound to vfio-pci",
            "give it with --vfio-device ADDRESS (a simulated device cannot run them)",
        )
    config.addinivalue_line("markers", "vfio_selftest: one case of the kernel's VFIO selftests")
    if os.environ.get("VFIO_HIL_LAB") == "1" and not hasattr(config, "workerinput"):
        from vfio_hil._selftests.lab import reserve_hugepages

        print(reserve_hugepages(), file=sys.stderr, flush=True)  # a lab guest: disposable
    config.pluginmanager.register(SelftestsPlugin(load_build(where), real), "vfio-hil-selftests")
