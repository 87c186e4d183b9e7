"""The lab's kernel coverage without a guest: the gcov variant, collection, gcovr.

A booted ``iommufd-cov`` guest is tests/lab/test_lab_coverage.py's; here
the pieces around it run for real where they can: make recurses as kbuild
does to show which directories the variant profiles, and gcc + gcovr turn
a small program laid out like the kernel's object tree into the report.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vfio_hil._cli import main as vfio_hil_main
from vfio_hil._exit import Exit
from vfio_hil._lab import build, gcov, kernels, run
from vfio_hil._lab._util import LabError
from vfio_hil._lab.kernels import Kernel

INTRS = "drivers/vfio/pci/vfio_pci_intrs.c"
MAIN = "drivers/vfio/vfio_main.c"


# --- the variant ---------------------------------------------------------------


def test_the_coverage_variant_turns_gcov_on_and_keeps_the_plain_fragment() -> None:
    config = build.COVERAGE.config
    assert "CONFIG_GCOV_KERNEL=y" in config.splitlines()
    assert "# CONFIG_GCOV_PROFILE_ALL is not set" in config.splitlines()
    assert 'CONFIG_LOCALVERSION="-vfio-hil-cov"' in config.splitlines()
    # Every other line of the plain kernel's fragment is there unchanged.
    plain = [ln for ln in build.LAB_CONFIG.splitlines() if "LOCALVERSION=" not in ln]
    assert set(plain) <= set(config.splitlines())
    assert build.missing_symbols(config, build.COVERAGE.required) == []


def test_the_plain_kernel_is_built_as_before() -> None:
    # CI caches the plain kernel: its fragment, objects dir, install tag and make
    # command must not change under it.
    assert build.PLAIN.config is build.LAB_CONFIG
    assert (build.PLAIN.flavour, build.PLAIN.source, build.PLAIN.make_vars) == (
        "iommufd",
        build.BUILT_SOURCE,
        (),
    )
    assert 'CONFIG_LOCALVERSION="-vfio-hil"' in build.LAB_CONFIG.splitlines()
    assert "GCOV" not in build.LAB_CONFIG
    argv = build._make(Path("/t"), Path("/o"), "bzImage", make_vars=build.PLAIN.make_vars)
    assert not [a for a in argv if "GCOV" in a]


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_only_vfio_and_iommufd_directories_are_profiled(tmp_path: Path) -> None:
    # kbuild runs one sub-make per directory with obj=DIR, and a Makefile may set
    # GCOV_PROFILE itself (arch/x86/boot says n); the variant's make variable
    # must say y exactly for drivers/vfio, drivers/iommu/iommufd and below.
    dirs = [
        "drivers/vfio",
        "drivers/vfio/pci",
        "drivers/iommu/iommufd",
        "drivers/iommu",
        "drivers/iommu/intel",
        "drivers/vfio_other",
        "arch/x86/boot",
        "kernel",
    ]
    (tmp_path / "Makefile").write_text(
        "all:\n" + "".join(f"\t@$(MAKE) -s -f sub.mk obj={d}\n" for d in dirs)
    )
    (tmp_path / "sub.mk").write_text(
        "ifeq ($(obj),arch/x86/boot)\nGCOV_PROFILE := n\nendif\n"
        "all:\n\t@echo '$(obj)=$(GCOV_PROFILE)'\n"
    )
    out = subprocess.run(
        ["make", "-s", "-C", str(tmp_path), *build.COVERAGE.make_vars],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    profiled = dict(line.split("=", 1) for line in out.split())
    assert {d for d, v in profiled.items() if v == "y"} == {
        "drivers/vfio",
        "drivers/vfio/pci",
        "drivers/iommu/iommufd",
    }


def test_the_coverage_spec_and_the_plain_one_never_pick_each_others_kernel() -> None:
    (plain,) = kernels.parse_spec("iommufd")
    (cov,) = kernels.parse_spec("iommufd-cov")

    def built(source: str, release: str) -> Kernel:
        p = Path("/nonexistent")
        return Kernel("x", release, "7.2.13", p, p, p, source)

    cov_kernel = built(build.COVERAGE_SOURCE, "7.2.13-vfio-hil-cov")
    plain_kernel = built(build.BUILT_SOURCE, "7.2.13-vfio-hil")
    assert kernels.matches(cov, cov_kernel)
    assert not kernels.matches(plain, cov_kernel)
    assert kernels.matches(plain, plain_kernel)
    assert not kernels.matches(cov, plain_kernel)


# --- before a boot -------------------------------------------------------------


def _cached_kernel(cache: Path, config: str) -> Kernel:
    release = "7.2.13-vfio-hil"
    root = cache / release / "root"
    (root / "boot").mkdir(parents=True)
    (root / "boot" / f"vmlinuz-{release}").write_bytes(b"")
    (root / "boot" / f"config-{release}").write_text(config)
    (root / "lib" / "modules" / release).mkdir(parents=True)
    k = Kernel(
        "iommufd",
        release,
        "7.2.13",
        root / "boot" / f"vmlinuz-{release}",
        root / "lib" / "modules" / release,
        root,
        build.BUILT_SOURCE,
    )
    kernels.write_manifest(k, cache / release)
    return k


def test_coverage_on_a_kernel_without_gcov_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _cached_kernel(tmp_path, "CONFIG_VFIO=y\n# CONFIG_GCOV_KERNEL is not set\n")
    monkeypatch.setenv("VFIO_HIL_CACHE", str(tmp_path))
    # No QEMU on PATH: reaching the boot would fail differently.
    monkeypatch.setenv("PATH", "/nonexistent")
    code = vfio_hil_main(["lab", "run", "--kernel", "iommufd", "--coverage", "--", "true"])
    err = capsys.readouterr().err.strip()
    assert code == Exit.USAGE
    assert len(err.splitlines()) == 1
    assert "without CONFIG_GCOV_KERNEL" in err
    assert "--kernel iommufd-cov" in err


def test_the_coverage_environment_skips_a_kernel_without_gcov(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vfio_hil._lab.qemu import get_preset

    k = _cached_kernel(tmp_path, "CONFIG_VFIO=y\n")
    monkeypatch.setenv(run.COVERAGE_ENV, str(tmp_path / "cov"))
    assert run._coverage_dir(k, get_preset("default"), None) is None
    gk = _cached_kernel(tmp_path / "g", "CONFIG_GCOV_KERNEL=y\n")
    first = run._coverage_dir(gk, get_preset("default"), None)
    assert first == tmp_path / "cov" / "7.2.13-vfio-hil-default"
    first.mkdir(parents=True)
    # a second guest in the same process never overwrites the first one's counters
    assert run._coverage_dir(gk, get_preset("default"), None) == first.with_name(first.name + "-2")


def test_the_guest_command_runs_under_the_gcov_wrapper(tmp_path: Path) -> None:
    k = _cached_kernel(tmp_path, "CONFIG_GCOV_KERNEL=y\n")
    shown = run.show_commands([k], ["python3", "x.py"], accel="tcg", coverage=True)
    assert re.search(r"gcov\.py --out \S+/7\.2\.13-vfio-hil/coverage -- python3 x\.py", shown)


def test_fuzz_kernel_coverage_needs_a_lab(capsys: pytest.CaptureFixture[str]) -> None:
    code = vfio_hil_main(["fuzz", "--sim", "edu", "--kernel-coverage", "/tmp/x"])
    assert code == Exit.USAGE
    assert "--lab" in capsys.readouterr().err


# --- collection and the report -------------------------------------------------


def test_collect_copies_the_counters_and_keeps_their_paths(tmp_path: Path) -> None:
    debugfs = tmp_path / "gcov"
    where = debugfs / "root" / "build" / "obj" / "drivers" / "vfio" / "pci"
    where.mkdir(parents=True)
    (where / "vfio_pci_intrs.gcda").write_bytes(b"adcg\x01")
    (where / "vfio_pci_intrs.gcno").symlink_to("/nonexistent.gcno")
    (debugfs / "reset").write_text("")
    assert gcov.collect(tmp_path / "out", debugfs) == 1
    copied = tmp_path / "out" / gcov.GCDA_DIR / "root/build/obj/drivers/vfio/pci"
    assert (copied / "vfio_pci_intrs.gcda").read_bytes() == b"adcg\x01"
    assert sorted(p.name for p in copied.iterdir()) == ["vfio_pci_intrs.gcda"]


_INTRS_C = """\
int vfio_pci_set_intx_trigger(int fd)
{
\tif (fd < 0)
\t\treturn -22;
\treturn 0;
}

int vfio_pci_set_msi_trigger(int n)
{
\tif (n > 100)
\t\treturn -28;
\treturn n;
}

int vfio_pci_set_irqs_ioctl(int index, int v)
{
\tif (index == 0)
\t\treturn vfio_pci_set_intx_trigger(v);
\treturn vfio_pci_set_msi_trigger(v);
}
"""
_MAIN_C = """\
int vfio_set_irqs_validate_and_prepare(int n)
{
\treturn n > 0 ? 0 : -22;
}

int vfio_other(void)
{
\treturn 1;
}
"""
_PROG_C = """\
int vfio_pci_set_irqs_ioctl(int index, int v);
int vfio_set_irqs_validate_and_prepare(int n);
int main(void)
{
\tint r = vfio_set_irqs_validate_and_prepare(1);
\tr += vfio_pci_set_irqs_ioctl(0, 1) + vfio_pci_set_irqs_ioctl(0, -1);
\tr += vfio_pci_set_irqs_ioctl(1, 5);
\treturn r != -17;
}
"""


def _guest_run(tmp_path: Path, name: str) -> Path:
    """A kernel-like object tree (``O=``, with its ``source`` link), a program
    built with gcov from it and run once, its counters collected as the guest
    does from debugfs (which mirrors the object tree's absolute path)."""
    src, obj = tmp_path / "src", tmp_path / "obj"
    if not obj.exists():
        for rel, text in ((INTRS, _INTRS_C), (MAIN, _MAIN_C)):
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            (src / rel).write_text(text)
            (obj / rel).parent.mkdir(parents=True, exist_ok=True)
        (obj / "source").symlink_to(src)
        (obj / "prog.c").write_text(_PROG_C)
        objects = []
        for rel in (INTRS, MAIN):
            o = str(Path(rel).with_suffix(".o"))
            subprocess.run(
                ["gcc", "--coverage", "-O0", "-c", f"../src/{rel}", "-o", o],
                cwd=obj,
                check=True,
                timeout=120,
            )
            objects.append(o)
        subprocess.run(
            ["gcc", "--coverage", "prog.c", *objects, "-o", "prog"],
            cwd=obj,
            check=True,
            timeout=120,
        )
    for gcda in obj.rglob("*.gcda"):
        gcda.unlink()
    subprocess.run([str(obj / "prog")], check=True, timeout=60)
    debugfs = tmp_path / f"debugfs-{name}"
    for gcda in (obj / "drivers").rglob("*.gcda"):
        mirror = debugfs / str(gcda.absolute()).lstrip("/")
        mirror.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(gcda, mirror)
    out = tmp_path / name
    assert gcov.collect(out, debugfs) == 2
    return out


needs_tools = pytest.mark.skipif(
    shutil.which("gcc") is None
    or (shutil.which("gcovr") is None and not (Path(sys.executable).parent / "gcovr").exists()),
    reason="needs gcc and gcovr (pip install -e '.[dev]')",
)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, ln in enumerate(text.splitlines(), 1) if needle in ln)


@needs_tools
def test_gcovr_reports_each_focus_function_with_its_calls_and_missed_lines(
    tmp_path: Path,
) -> None:
    rep = gcov.report(_guest_run(tmp_path, "run1"), unreachable={})
    by = {f.name: f for f in rep.functions}
    # FOCUS: every function of vfio_pci_intrs.c, one of vfio_main.c.
    assert set(by) == {
        "vfio_pci_set_intx_trigger",
        "vfio_pci_set_msi_trigger",
        "vfio_pci_set_irqs_ioctl",
        "vfio_set_irqs_validate_and_prepare",
    }
    # main() calls the ioctl three times: INTx twice (once with a bad fd), MSI once.
    assert (by["vfio_pci_set_irqs_ioctl"].calls, by["vfio_pci_set_intx_trigger"].calls) == (3, 2)
    assert by["vfio_pci_set_msi_trigger"].calls == 1
    assert by["vfio_pci_set_intx_trigger"].uncovered == []
    assert by["vfio_pci_set_msi_trigger"].missed == [_line_of(_INTRS_C, "return -28")]
    assert by["vfio_pci_set_msi_trigger"].branches_taken < by["vfio_pci_set_msi_trigger"].branches
    text = (rep.directory / "focus.txt").read_text()
    assert f"{INTRS}:{_line_of(_INTRS_C, 'return -28')} (vfio_pci_set_msi_trigger)" in text
    html = rep.html.read_text()
    assert "vfio_pci_intrs.c" in html
    assert "vfio_other" not in text  # not a focus function
    assert "vfio_pci_intrs.c" in (rep.directory / "summary.txt").read_text()


@needs_tools
def test_a_listed_unreachable_line_is_not_counted_as_missed(tmp_path: Path) -> None:
    line = _line_of(_INTRS_C, "return -28")
    rep = gcov.report(
        _guest_run(tmp_path, "run1"), unreachable={(INTRS, line): "needs more than 100 vectors"}
    )
    (msi,) = [f for f in rep.functions if f.name == "vfio_pci_set_msi_trigger"]
    assert msi.missed == []
    assert msi.unreachable == {line: "needs more than 100 vectors"}
    assert msi.reachable == msi.lines - 1
    lines, covered, reachable = rep.file_totals(INTRS)
    assert covered == reachable < lines
    assert "needs more than 100 vectors" in (rep.directory / "focus.txt").read_text()


@needs_tools
def test_merged_runs_add_their_counts(tmp_path: Path) -> None:
    one, two = _guest_run(tmp_path, "run1"), _guest_run(tmp_path, "run2")
    gcov.report(one, unreachable={})
    gcov.report(two, unreachable={})
    rep = gcov.merge(tmp_path / "merged", [one, two], unreachable={})
    by = {f.name: f.calls for f in rep.functions}
    assert by["vfio_pci_set_irqs_ioctl"] == 6
    assert rep.html.is_file()


def test_counters_of_another_build_are_named(tmp_path: Path) -> None:
    gcda = tmp_path / gcov.GCDA_DIR / "nonexistent" / "obj" / "drivers" / "vfio" / "x.gcda"
    gcda.parent.mkdir(parents=True)
    gcda.write_bytes(b"")
    with pytest.raises(LabError, match=r"/nonexistent/obj/drivers/vfio/x\.gcno is missing"):
        gcov.report(tmp_path)


def test_no_counters_at_all_is_named(tmp_path: Path) -> None:
    with pytest.raises(LabError, match=r"no \.gcda files"):
        gcov.report(tmp_path)


# --- the committed list of unreachable lines ----------------------------------


def test_every_unreachable_entry_names_a_reason_and_a_focus_file() -> None:
    import tomllib

    data = tomllib.loads(gcov.UNREACHABLE.read_text())
    for entry in data.get("line", []):
        assert entry["file"] in gcov.FOCUS
        assert data["reasons"][entry["reason"]]
        assert len(entry["lines"]) == len(entry["text"])


def test_unreachable_lines_are_the_source_lines_they_name() -> None:
    # The list is per source version: a line number that moved would silently
    # excuse another line. Checked against the tree the variant is built from.
    import tomllib

    data = tomllib.loads(gcov.UNREACHABLE.read_text())
    tree = kernels.cache_dir() / "build" / f"linux-source-{data['kernel']}"
    if not tree.is_dir():
        pytest.skip(f"no kernel tree {tree} (vfio-hil lab build --coverage unpacks it)")
    for entry in data.get("line", []):
        source = (tree / entry["file"]).read_text().splitlines()
        for number, text in zip(entry["lines"], entry["text"], strict=True):
            assert source[number - 1].strip() == text, (entry["file"], number)


def test_merging_a_directory_without_a_report_names_it(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    with pytest.raises(LabError, match="no gcovr tracefile"):
        gcov.merge(tmp_path / "out", [tmp_path / "a"])
