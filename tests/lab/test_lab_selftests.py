"""The kernel's VFIO selftests in the lab, every IOMMU mode the kernel has.

One guest per kernel (``VFIO_HIL_LAB_SELFTESTS_KERNELS``, default ``iommufd
6.12``) with the default devices (edu, virtio-rng) bound to vfio-pci runs
``pytest --vfio-selftests`` against them: the lab's devices presented as
real ones (``--vfio-device`` from the guest's VFIO_HIL_DEVICES).  The oracle
is the kernel's own configuration: where it has CONFIG_IOMMUFD every mode
(type1, type1v2, iommufd_compat_type1[v2], iommufd) must pass on both
devices; where it lacks it, the containers pass and every iommufd mode is
skipped for lack of /dev/iommu.  No case may fail.

Without QEMU, virtme-ng, the cached kernels or the selftests build these
tests skip and say how to get them; with CI=true they fail.
"""

from __future__ import annotations

import os
import shlex
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import pytest

from tests.lab.lab_needs import find_kernel, missing, unavailable

pytestmark = pytest.mark.lab

KERNELS = os.environ.get("VFIO_HIL_LAB_SELFTESTS_KERNELS", "iommufd 6.12").split()
GUEST_TIMEOUT_S = 900.0  # measured: 206 s on iommufd under TCG, next to other guests
CONTAINERS = ("vfio_type1_iommu", "vfio_type1v2_iommu")
# The selftests are 7.2's, and some of their cases assert what later kernels
# changed; on an older kernel such a case fails, and that failure is the
# kernel's answer: kept here as observed (6.1.0-57 and 6.12.118 in the lab),
# so a change either way is noticed.  type1 on 6.1 and 6.12 answers a map past
# the end of the IOVA space with EINVAL; 7.2 (Debian's and the lab's) EOVERFLOW.
_EINVAL_NOT_EOVERFLOW = {
    f"vfio_dma_map_limit_test.{mode}.overflow": "Expected rc (-22) == -EOVERFLOW (-75)"
    for mode in CONTAINERS
}
KNOWN_FAILURES = {"6.1": _EINVAL_NOT_EOVERFLOW, "6.12": _EINVAL_NOT_EOVERFLOW}


def _outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    """testcase name (``CASE[MODE-BDF]``) -> (passed|skipped|failed, message)."""
    out = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        status, message = "passed", ""
        for child in case:
            if child.tag in ("skipped", "failure", "error"):
                status = "skipped" if child.tag == "skipped" else "failed"
                message = child.get("message", "") + "\n" + (child.text or "")
        out[f"{case.get('classname')}::{case.get('name')}"] = (status, message)
    return out


def _case(name: str) -> str:
    """The harness's case name (FIXTURE.VARIANT.TEST) of a testcase."""
    return name.rsplit("::", 1)[-1].split("[", 1)[0]


def _mode_device(name: str) -> tuple[str, str]:
    mode, _, bdf = name.rsplit("[", 1)[1].rstrip("]").partition("-")
    return mode, bdf


@pytest.mark.timeout(GUEST_TIMEOUT_S + 120)
@pytest.mark.parametrize("spec", KERNELS)
def test_selftests_pass_in_every_mode_the_kernel_has(spec: str, tmp_path: Path) -> None:
    why = missing(spec)
    if why:
        unavailable(why)
    from vfio_hil._lab.kernels import cache_dir, kernel_has
    from vfio_hil._lab.run import run_lab
    from vfio_hil._selftests.build import find_build
    from vfio_hil._selftests.lab import GUEST_KERNEL_ARGS, GUEST_MEMORY
    from vfio_hil._selftests.modes import ALL_MODES

    build = find_build(cache_dir())
    if build is None:
        unavailable("the VFIO selftests built (vfio-hil selftests build)")
    assert build is not None
    kernel = find_kernel(spec)
    has_iommufd = kernel_has(kernel, "IOMMUFD")
    assert has_iommufd is not None, f"{spec}: its kernel config is not in the cache"
    junit = tmp_path / kernel.release / "selftests.xml"  # the guest writes its results dir only
    (tmp_path / "none").mkdir()  # a path with no tests: only the selftests are collected
    pytest_argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts="]
    pytest_argv += ["--vfio-selftests", f"--vfio-selftests-dir={build.root}"]
    pytest_argv += [f"--junitxml={junit}", str(tmp_path / "none")]
    # The guest's devices given as a user gives real ones: --vfio-device ADDRESS each.
    as_real = (
        'for d in $(echo "$VFIO_HIL_DEVICES" | tr , " "); do set -- "$@" --vfio-device "$d"; done'
    )
    script = f'{as_real}; exec {shlex.join(pytest_argv)} "$@"'
    (result,) = run_lab(
        [kernel],
        ["/bin/sh", "-c", script, "sh"],
        accel=os.environ.get("VFIO_HIL_LAB_ACCEL", "auto"),
        memory=GUEST_MEMORY,
        kernel_args=GUEST_KERNEL_ARGS,
        timeout=GUEST_TIMEOUT_S,
        results_dir=tmp_path,
    )
    assert junit.is_file(), f"{spec}: no results ({result.verdict()}); see {result.results_dir}"
    outcomes = _outcomes(junit)
    known = KNOWN_FAILURES.get(spec, {})
    failed = {n: m for n, (s, m) in outcomes.items() if s == "failed"}
    unexpected = {n: m for n, m in failed.items() if known.get(_case(n), "\0") not in m}
    assert not unexpected, f"{spec}: selftests failed:\n" + "\n".join(
        f"{n}\n{m}" for n, m in unexpected.items()
    )
    failed_cases = sorted({_case(n) for n in failed})
    assert failed_cases == sorted(known), (
        f"{spec}: known failures {sorted(known)} now {failed_cases}"
    )
    passed: dict[str, set[str]] = defaultdict(set)  # mode -> devices it passed on
    for name, (status, message) in outcomes.items():
        mode, bdf = _mode_device(name)
        if status == "passed":
            passed[mode].add(bdf)
        elif mode.startswith("iommufd") and not has_iommufd:
            assert "no /dev/iommu" in message, f"{name}: skipped for another reason: {message}"
    devices = {bdf for _, bdf in map(_mode_device, outcomes)}
    assert len(devices) == 2, f"expected edu and virtio, ran on {sorted(devices)}"
    expected = ALL_MODES if has_iommufd else CONTAINERS
    for mode in expected:
        assert passed[mode] == devices, f"{spec}: {mode} passed on {sorted(passed[mode])} only"
    if not has_iommufd:
        assert not any(passed[m] for m in ALL_MODES if m.startswith("iommufd"))
    # The guest has the memory, and a 1 GiB page reserved at boot: the
    # gigantic-page variants run too, in every mode that passes.
    gigantic = {
        _mode_device(n)[0] for n, (s, _) in outcomes.items() if "hugetlb_1gb" in n and s == "passed"
    }
    assert gigantic == set(expected), f"{spec}: hugetlb_1gb passed in {sorted(gigantic)} only"
    assert not result.guest_failed, result.verdict()  # no Oops or hang (exit 1: a failed case)
