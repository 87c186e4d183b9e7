"""Kernel line coverage in the lab: gcov counters of an ``iommufd-cov`` guest.

The ``iommufd-cov`` kernel (``build.COVERAGE``) is built with
``CONFIG_GCOV_KERNEL`` and gcov profiling of ``drivers/vfio/`` and
``drivers/iommu/iommufd/`` only.  A guest run with coverage wraps its
command in this file, run by path with ``python -S`` in the guest (so only
the stdlib is imported at module level):

    python -S .../gcov.py --out DIR -- COMMAND...

It resets the counters (``/sys/kernel/debug/gcov/reset``), runs COMMAND,
then copies every ``.gcda`` the kernel exposes into ``DIR/gcda`` (the guest
shares the host's files, so DIR is a host path).  On the host ``report``
puts each ``.gcno`` of the object tree next to its ``.gcda`` and runs
gcovr: ``coverage.json`` (gcovr's tracefile; ``merge`` adds several),
``summary.txt`` (per file, uncovered lines), ``html/index.html`` (per
function and per line, annotated source) and ``focus.txt``: the SET_IRQS
and GET_IRQ_INFO paths (``FOCUS``) per function, with the lines the run
did not reach and, from ``coverage_unreachable.toml``, those it cannot.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEBUGFS = Path("/sys/kernel/debug")
GCOV_ROOT = DEBUGFS / "gcov"
GCDA_DIR = "gcda"
TRACEFILE = "coverage.json"
MARK = "VFIO-HIL-LAB:"
GCOVR_TIMEOUT_S = 600.0
UNREACHABLE = Path(__file__).with_name("coverage_unreachable.toml")
# The SET_IRQS / GET_IRQ_INFO paths: a file (every function) or some of its functions.
FOCUS: dict[str, tuple[str, ...]] = {
    "drivers/vfio/pci/vfio_pci_intrs.c": (),
    "drivers/vfio/pci/vfio_pci_core.c": (
        "vfio_pci_ioctl_get_irq_info",
        "vfio_pci_ioctl_set_irqs",
        "vfio_pci_get_irq_count",
    ),
    "drivers/vfio/vfio_main.c": ("vfio_set_irqs_validate_and_prepare",),
}


# --- in the guest (stdlib only) ---------------------------------------------


def _say(message: str) -> None:
    print(f"{MARK} gcov: {message}", flush=True)


def _mount_debugfs() -> None:
    if not GCOV_ROOT.is_dir():
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["mount", "-t", "debugfs", "debugfs", str(DEBUGFS)],
                check=False,
                capture_output=True,
                timeout=30,
            )
    if not GCOV_ROOT.is_dir():
        raise OSError(f"{GCOV_ROOT} is missing: the kernel was built without CONFIG_GCOV_KERNEL")


def collect(out: Path, gcov_root: Path = GCOV_ROOT) -> int:
    """Copy every ``.gcda`` under ``gcov_root`` into ``out/gcda``, keeping its path; how many."""
    copied = 0
    for directory, _, names in os.walk(gcov_root):
        for name in names:
            if not name.endswith(".gcda"):
                continue
            source = Path(directory, name)
            target = out / GCDA_DIR / source.relative_to(gcov_root)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())  # debugfs sizes are 0: read, not copyfile
            copied += 1
    return copied


def guest_main(argv: Sequence[str] | None = None) -> int:
    """Reset the counters, run the command, copy the counters out; its exit code."""
    parser = argparse.ArgumentParser(prog="gcov.py")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    try:
        _mount_debugfs()
        (GCOV_ROOT / "reset").write_text("1\n")
    except OSError as exc:
        _say(f"cannot reset the counters: {exc}")
        return 125
    results = os.environ.get("VFIO_HIL_RESULTS")
    # The wrapper hides pytest from guest.py: add its JUnit report and plugin here.
    sys.path.insert(0, str(Path(__file__).parent))
    from guest import is_pytest, pytest_command  # type: ignore[import-not-found]

    if results and is_pytest(command):
        command = pytest_command(command, Path(results))
    try:
        code = subprocess.run(command, check=False).returncode
    except OSError as exc:
        print(f"cannot run {command[0]}: {exc}", flush=True)
        code = 127
    started = time.monotonic()
    shutil.rmtree(args.out / GCDA_DIR, ignore_errors=True)
    try:
        copied = collect(args.out)
    except OSError as exc:  # the command's verdict stands; the host reports no counters
        _say(f"cannot copy the counters to {args.out}: {exc}")
    else:
        _say(f"{copied} .gcda files copied to {args.out} in {time.monotonic() - started:.1f} s")
    os.sync()
    return code if code >= 0 else 128 - code


def wrap(command: Sequence[str], out: Path) -> list[str]:
    """``command`` run under ``guest_main`` in the guest, collecting into ``out``."""
    return [sys.executable, "-S", str(Path(__file__).resolve()), "--out", str(out), "--", *command]


# --- on the host --------------------------------------------------------------


@dataclass
class FunctionCoverage:
    file: str
    name: str
    calls: int
    lines: int
    covered: int
    uncovered: list[int]
    branches: int = 0
    branches_taken: int = 0
    unreachable: dict[int, str] = field(default_factory=dict)  # line -> reason

    @property
    def reachable(self) -> int:
        return self.lines - len(self.unreachable)

    @property
    def missed(self) -> list[int]:
        """Uncovered lines not listed as unreachable: what a new test could reach."""
        return [n for n in self.uncovered if n not in self.unreachable]


@dataclass
class Report:
    directory: Path
    functions: list[FunctionCoverage]

    @property
    def html(self) -> Path:
        return self.directory / "html" / "index.html"

    def file_totals(self, file: str) -> tuple[int, int, int]:
        """(lines, covered, reachable) over the focus functions of ``file``."""
        fs = [f for f in self.functions if f.file == file]
        return (
            sum(f.lines for f in fs),
            sum(f.covered for f in fs),
            sum(f.reachable for f in fs),
        )


def _gcovr() -> str:
    from vfio_hil._lab._util import LabError

    found = shutil.which("gcovr") or shutil.which("gcovr", path=str(Path(sys.executable).parent))
    if not found:
        raise LabError(
            "gcovr not found: it turns the kernel's gcov counters into the report; "
            "pip install -e '.[lab]' (or pip install gcovr)"
        )
    return found


def pair_notes(directory: Path) -> Path:
    """Put each ``.gcno`` (from the object tree on this host) next to its ``.gcda``;
    the object tree."""
    from vfio_hil._lab._util import LabError

    base = directory / GCDA_DIR
    gcdas = sorted(base.rglob("*.gcda"))
    if not gcdas:
        raise LabError(
            f"no .gcda files in {base}: the guest collected nothing "
            "(was the command run with --coverage on --kernel iommufd-cov?)"
        )
    objects: Path | None = None
    for gcda in gcdas:
        built = Path("/", gcda.relative_to(base)).with_suffix(".gcno")
        if not built.is_file():
            raise LabError(
                f"{built} is missing: the .gcda came from another build of the kernel; "
                "rebuild it (`vfio-hil lab build --coverage`) and run again"
            )
        shutil.copyfile(built, gcda.with_suffix(".gcno"))
        if objects is None:
            rel = built.parts
            objects = Path(*rel[: rel.index("drivers")])
    assert objects is not None
    return objects


def _run_gcovr(argv: list[str], cwd: Path) -> None:
    from vfio_hil._lab._util import LabError

    try:
        proc = subprocess.run(
            argv, cwd=cwd, capture_output=True, text=True, timeout=GCOVR_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise LabError(f"gcovr took longer than {GCOVR_TIMEOUT_S:.0f} s") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-10:])
        raise LabError(f"gcovr failed (exit {proc.returncode}):\n{tail}")


def _outputs(out: Path, tree: Path) -> list[str]:
    (out / "html").mkdir(parents=True, exist_ok=True)
    return [
        "--root",
        str(tree),
        "--json-pretty",
        "--json",
        str(out / TRACEFILE),
        "--txt",
        str(out / "summary.txt"),
        "--html-details",
        str(out / "html" / "index.html"),
        "--html-title",
        "vfio-hil: kernel coverage of drivers/vfio and drivers/iommu/iommufd",
    ]


def _filters(tree: Path) -> list[str]:
    root = str(tree).replace("\\", "\\\\")
    return [
        "--filter",
        f"{root}/drivers/vfio/",
        "--filter",
        f"{root}/drivers/iommu/iommufd/",
    ]


def report(directory: Path, unreachable: dict[tuple[str, int], str] | None = None) -> Report:
    """gcovr over the counters ``guest_main`` collected into ``directory``."""
    objects = pair_notes(directory)
    tree = (objects / "source").resolve()  # kbuild's O= tree links its source tree
    _run_gcovr(
        [
            _gcovr(),
            *_outputs(directory, tree),
            *_filters(tree),
            "--object-directory",
            str(objects),
            str(directory / GCDA_DIR),
        ],
        cwd=objects,
    )
    (directory / "source").unlink(missing_ok=True)
    (directory / "source").symlink_to(tree)
    return _finish(directory, unreachable)


def merge(
    out: Path,
    directories: Sequence[Path],
    unreachable: dict[tuple[str, int], str] | None = None,
) -> Report:
    """One report over several collections (their ``coverage.json``) into ``out``."""
    from vfio_hil._lab._util import LabError

    traces = [d / TRACEFILE for d in directories]
    missing = [str(t) for t in traces if not t.is_file()]
    if missing:
        raise LabError(f"no gcovr tracefile {', '.join(missing)}: not a coverage directory")
    tree = (directories[0] / "source").resolve()
    out.mkdir(parents=True, exist_ok=True)
    argv = [_gcovr(), *_outputs(out, tree)]
    for trace in traces:
        argv += ["--json-add-tracefile", str(trace.absolute())]
    _run_gcovr(argv, cwd=tree)
    (out / "source").unlink(missing_ok=True)
    (out / "source").symlink_to(tree)
    return _finish(out, unreachable)


def load_unreachable(path: Path = UNREACHABLE) -> dict[tuple[str, int], str]:
    """``coverage_unreachable.toml``: (file, line) -> why the lab cannot reach it."""
    import tomllib

    data = tomllib.loads(path.read_text())
    out: dict[tuple[str, int], str] = {}
    for entry in data.get("line", []):
        reason = data["reasons"][entry["reason"]]
        for line in entry["lines"]:
            out[(entry["file"], int(line))] = reason
    return out


def focus(trace: dict[str, Any], unreachable: dict[tuple[str, int], str]) -> list[FunctionCoverage]:
    """The ``FOCUS`` functions of a gcovr JSON tracefile, each with its lines."""
    found = []
    for entry in trace["files"]:
        name = entry["file"]
        if name not in FOCUS:
            continue
        by_function: dict[str, list[dict[str, Any]]] = {}
        for line in entry["lines"]:
            by_function.setdefault(line.get("function_name") or "", []).append(line)
        for fn in sorted(entry["functions"], key=lambda f: int(f["lineno"])):
            fname = fn.get("demangled_name") or fn["name"]
            if FOCUS[name] and fname not in FOCUS[name]:
                continue
            lines = by_function.get(fname, [])
            # gcovr names the static helpers gcc inlined everywhere "<unknown function N>"
            # (excluded, no count): their lines still count, their calls are their first line's.
            calls = fn.get("execution_count", max((int(ln["count"]) for ln in lines), default=0))
            uncovered = sorted(int(ln["line_number"]) for ln in lines if int(ln["count"]) == 0)
            branches = [int(b["count"]) for ln in lines for b in ln.get("branches", [])]
            found.append(
                FunctionCoverage(
                    file=name,
                    name=fname,
                    calls=int(calls),
                    lines=len(lines),
                    covered=len(lines) - len(uncovered),
                    uncovered=uncovered,
                    branches=len(branches),
                    branches_taken=sum(1 for c in branches if c),
                    unreachable={
                        n: unreachable[(name, n)] for n in uncovered if (name, n) in unreachable
                    },
                )
            )
    return found


def focus_text(rep: Report) -> str:
    """The focus table: per function its calls and lines, then the missed lines."""
    rows = [f"{'function':44} {'calls':>8} {'lines':>11} {'reachable':>11} {'branches':>11}"]
    for file in FOCUS:
        lines, covered, reachable = rep.file_totals(file)
        what = "all functions" if not FOCUS[file] else ", ".join(FOCUS[file])
        rows.append(f"\n{file} ({what}): {covered}/{lines} lines" + _pct(covered, lines))
        rows.append(f"  of the reachable: {covered}/{reachable}" + _pct(covered, reachable))
        for f in (f for f in rep.functions if f.file == file):
            lines_col = f"{f.covered}/{f.lines}"
            reach_col = f"{f.covered}/{f.reachable}"
            branch_col = f"{f.branches_taken}/{f.branches}"
            rows.append(
                f"  {f.name:42} {f.calls:>8} {lines_col:>11} {reach_col:>11} {branch_col:>11}"
            )
    missed = [(f, n) for f in rep.functions for n in f.missed]
    rows.append(f"\nreachable lines not reached ({len(missed)}):")
    rows += [f"  {f.file}:{n} ({f.name})" for f, n in missed] or ["  none"]
    listed = [(f, n, why) for f in rep.functions for n, why in f.unreachable.items()]
    rows.append(f"\nunreached, listed as unreachable from the lab ({len(listed)}):")
    rows += [f"  {f.file}:{n} ({f.name}): {why}" for f, n, why in listed] or ["  none"]
    return "\n".join(rows) + "\n"


def _pct(part: int, whole: int) -> str:
    return f" ({100.0 * part / whole:.1f}%)" if whole else ""


def _finish(directory: Path, unreachable: dict[tuple[str, int], str] | None) -> Report:
    trace = json.loads((directory / TRACEFILE).read_text())
    known = load_unreachable() if unreachable is None else unreachable
    rep = Report(directory, focus(trace, known))
    (directory / "focus.txt").write_text(focus_text(rep))
    return rep


if __name__ == "__main__":
    sys.exit(guest_main())
