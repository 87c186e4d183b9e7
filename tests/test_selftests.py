"""The kernel's VFIO selftests as pytest items: listing, TAP results, modes, ids.

The listings and outputs below are the 7.2.13 binaries' own (built by
``vfio-hil selftests build``; the passing and skipping ones captured in a lab
guest, the failing one on a host without the device).  The expected cases
are what the C sources declare (FIXTURE_VARIANT_ADD, TEST_F).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vfio_hil._lab.kernels import cache_dir
from vfio_hil._selftests.build import (
    CALLOC_SHIM,
    SelftestsBuild,
    find_build,
    mode_kind,
    needs_calloc_assert,
)
from vfio_hil._selftests.collect import item_specs
from vfio_hil._selftests.harness import Case, parse_listing, parse_result, run_case
from vfio_hil._selftests.modes import ALL_MODES, mode_of_variant, unavailable

pytest_plugins = ["pytester"]

# vfio_pci_device_test -l (7.2.13): two fixtures, the second with two variants.
DEVICE_TEST_LISTING = """\
# FIXTURE            VARIANT                   TEST
global
--------------------------------------------------------------------------------
vfio_pci_device_test                           config_space_read_write
                                               validate_bars
                                               reset
--------------------------------------------------------------------------------
vfio_pci_irq_test    msi                       enable_trigger_disable
                     msix
"""

# vfio_dma_mapping_test -l (7.2.13), cut to two of its fifteen first variants:
# a fixture name longer than its column pushes the variant right.
DMA_TEST_LISTING = """\
# FIXTURE            VARIANT                   TEST
global
--------------------------------------------------------------------------------
vfio_dma_mapping_test vfio_type1_iommu_anonymous dma_map_unmap
                     iommufd_anonymous_hugetlb_1gb
--------------------------------------------------------------------------------
vfio_dma_map_limit_test vfio_type1_iommu          unmap_range
                     vfio_type1v2_iommu        unmap_all
                     iommufd_compat_type1      overflow
"""

# vfio_pci_device_test -r vfio_pci_device_test.reset 0000:ff:1f.7 on a host
# without that device (exit 1; the assertion's path shortened).
FAILED_OUTPUT = """\
TAP version 13
1..1
# Starting 1 tests from 1 test cases.
#  RUN           vfio_pci_device_test.reset ...
lib/iommu.c:448: Assertion Failure

  Expression: iommu->iommufd > 0
  Observed: 0xffffffffffffffff > 0
  [errno: 2 - No such file or directory]

# reset: Test failed
#          FAIL  vfio_pci_device_test.reset
not ok 1 vfio_pci_device_test.reset
# FAILED: 0 / 1 tests passed.
# Totals: pass:0 fail:1 xfail:0 xpass:0 skip:0 error:0
"""

# vfio_pci_sriov_uapi_test 0000:ff:1f.7 (exit 4): it gives up before its harness.
PLAN_SKIP_OUTPUT = "1..0 # SKIP SR-IOV may not be supported by the PF: 0000:ff:1f.7\n"


def test_listing_is_each_fixtures_variants_times_its_tests() -> None:
    cases = parse_listing(DEVICE_TEST_LISTING)
    assert [c.name for c in cases] == [
        "vfio_pci_device_test.config_space_read_write",
        "vfio_pci_device_test.validate_bars",
        "vfio_pci_device_test.reset",
        "vfio_pci_irq_test.msi.enable_trigger_disable",
        "vfio_pci_irq_test.msix.enable_trigger_disable",
    ]


def test_listing_with_names_longer_than_their_column() -> None:
    cases = parse_listing(DMA_TEST_LISTING)
    assert Case("vfio_dma_mapping_test", "iommufd_anonymous_hugetlb_1gb", "dma_map_unmap") in cases
    limit = [c for c in cases if c.fixture == "vfio_dma_map_limit_test"]
    assert len(limit) == 3 * 3
    assert {c.test for c in limit} == {"unmap_range", "unmap_all", "overflow"}


def test_listing_ignores_what_comes_before_the_table() -> None:
    assert parse_listing("Using cdev device /dev/vfio/devices/vfio0\n" + DEVICE_TEST_LISTING)
    assert parse_listing("lib/vfio_pci_device.c:356: Assertion Failure\n  Failed\n") == []


def test_a_failed_case_keeps_its_output() -> None:
    outcome = parse_result(FAILED_OUTPUT, "vfio_pci_device_test.reset", 1)
    assert outcome.status == "failed"
    assert "iommu->iommufd > 0" in outcome.output


def test_a_skip_keeps_its_reason() -> None:
    outcome = parse_result(PLAN_SKIP_OUTPUT, None, 4)
    assert (outcome.status, outcome.reason) == (
        "skipped",
        "SR-IOV may not be supported by the PF: 0000:ff:1f.7",
    )


def test_no_result_line_is_a_failure_naming_the_exit() -> None:
    outcome = parse_result("#  RUN           a.b ...\n", "a.b", None)
    assert outcome.status == "failed"
    assert "timed out" in outcome.reason


def test_modes_of_variants_and_defaults() -> None:
    assert mode_of_variant("vfio_type1v2_iommu_anonymous_hugetlb_2mb") == "vfio_type1v2_iommu"
    assert mode_of_variant("iommufd") == "iommufd"
    assert mode_of_variant("iommufd_compat_type1") == "iommufd_compat_type1"
    case = Case("vfio_pci_irq_test", "msix", "enable_trigger_disable")
    # lib/iommu.c's default mode, set per item: each case in every mode
    assert [m for _, m in item_specs("default", [case])] == list(ALL_MODES)
    variant = Case("vfio_dma_map_limit_test", "iommufd_compat_type1v2", "overflow")
    assert list(item_specs("variant", [variant])) == [(variant, "iommufd_compat_type1v2")]
    assert list(item_specs("iommufd", [])) == [(None, "iommufd")]


def _fake_kernel(tmp_path: Path, *, iommufd: bool, cdev: bool) -> Path:
    dev = tmp_path / "sys/bus/pci/devices/0000:00:04.0"
    dev.mkdir(parents=True)
    (tmp_path / "sys/kernel/iommu_groups/7").mkdir(parents=True)
    (dev / "iommu_group").symlink_to(tmp_path / "sys/kernel/iommu_groups/7")
    (tmp_path / "dev/vfio").mkdir(parents=True)
    (tmp_path / "dev/vfio/vfio").touch()
    (tmp_path / "dev/vfio/7").touch()
    if iommufd:
        (tmp_path / "dev/iommu").touch()
    if cdev:
        (dev / "vfio-dev/vfio0").mkdir(parents=True)
    return tmp_path


def test_a_kernel_without_iommufd_runs_the_containers_only(tmp_path: Path) -> None:
    root = _fake_kernel(tmp_path, iommufd=False, cdev=False)
    why = {m: unavailable(m, "0000:00:04.0", root) for m in ALL_MODES}
    assert why["vfio_type1_iommu"] is None
    assert why["vfio_type1v2_iommu"] is None
    for mode in ("iommufd_compat_type1", "iommufd_compat_type1v2", "iommufd"):
        assert "CONFIG_IOMMUFD" in str(why[mode])


def test_iommufd_needs_the_cdev_too(tmp_path: Path) -> None:
    root = _fake_kernel(tmp_path, iommufd=True, cdev=False)
    assert unavailable("iommufd_compat_type1v2", "0000:00:04.0", root) is None
    assert "CONFIG_VFIO_DEVICE_CDEV" in str(unavailable("iommufd", "0000:00:04.0", root))


def test_how_each_binary_picks_its_mode() -> None:
    assert mode_kind("FIXTURE_VARIANT_ADD_ALL_IOMMU_MODES();\niommu_init(default_iommu_mode)") == (
        "variant"
    )
    assert mode_kind("self->iommu = iommu_init(default_iommu_mode);") == "default"
    assert mode_kind('static const char iommu_dev_path[] = "/dev/iommu";') == "iommufd"


def test_the_calloc_assert_break_is_worked_around_only_where_needed(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib/vfio_pci_device.c").write_text("irq = calloc_assert(1, argsz);\n")
    assert needs_calloc_assert(tmp_path)
    (tmp_path / "lib/assert.h").write_text(CALLOC_SHIM)  # a tree that defines it
    assert not needs_calloc_assert(tmp_path)


# Looked up at import: pytester moves HOME, and with it the kernel cache.
BUILD = find_build(cache_dir())


def _build() -> SelftestsBuild:
    if BUILD is None:
        pytest.skip("no VFIO selftests build: vfio-hil selftests build")
    return BUILD


def test_a_real_binary_on_a_missing_device_fails_with_its_output() -> None:
    build = _build()
    case = Case("vfio_pci_device_test", "", "reset")
    outcome = run_case(build.bin_dir / "vfio_pci_device_test", case, "0000:ff:1f.7", {}, 60)
    assert outcome.status == "failed"
    assert "not ok 1 vfio_pci_device_test.reset" in outcome.output


def _on_a_fake_device(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """pytest --vfio-selftests with the built selftests, on an address no device has."""
    build = _build()
    return pytester.runpytest(
        "-p",
        "no:cacheprovider",
        "--vfio-selftests",
        f"--vfio-selftests-dir={build.root}",
        "--vfio-device",
        "0000:ff:1f.7",
        *args,
    )


def test_the_items_name_binary_case_mode_and_device(pytester: pytest.Pytester) -> None:
    result = _on_a_fake_device(pytester, "--collect-only", "-q")
    ids = set(result.outlines)
    for mode in ALL_MODES:
        assert (
            f"vfio-selftests/vfio_pci_device_test::vfio_pci_irq_test.msix.enable_trigger_disable"
            f"[{mode}-0000:ff:1f.7]" in ids
        )
    assert (
        "vfio-selftests/vfio_dma_mapping_test::vfio_dma_map_limit_test.iommufd.overflow"
        "[iommufd-0000:ff:1f.7]" in ids
    )


def test_selftests_without_a_device_is_one_clear_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("-p", "no:cacheprovider", "--vfio-selftests")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--vfio-selftests needs a PCI device bound to vfio-pci" in result.stderr.str()
    assert "Traceback" not in result.stderr.str()


def test_a_binary_that_gives_up_is_one_skipped_item_with_its_reason(
    pytester: pytest.Pytester,
) -> None:
    result = _on_a_fake_device(pytester, "-k", "sriov", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(
        ["*vfio_pci_sriov_uapi_test*SR-IOV may not be supported by the PF*"]
    )


def test_the_guest_reserves_hugepages_and_says_what_it_got(tmp_path: Path) -> None:
    from vfio_hil._selftests.lab import reserve_hugepages

    (tmp_path / "hugepages-2048kB").mkdir()
    (tmp_path / "hugepages-2048kB/nr_hugepages").write_text("0\n")
    line = reserve_hugepages(tmp_path)  # no 1 GiB size here, as in the lab's own kernel
    assert (tmp_path / "hugepages-2048kB/nr_hugepages").read_text() == "8\n"
    assert "hugepages-2048kB: 8/8" in line
    assert "hugepages-1048576kB: not reserved" in line
