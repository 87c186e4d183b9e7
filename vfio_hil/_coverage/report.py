"""A run's coverage against what each device can produce: text, JUnit, HTML."""

from __future__ import annotations

import contextlib
import html
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vfio_hil._coverage.cells import INDEXES, RANGES, STATES, Cell
from vfio_hil._coverage.reach import Reach, explore
from vfio_hil._coverage.recorder import DeviceKey, Recorder
from vfio_hil._errors import VfioHilError
from vfio_hil._model import kernel_profile

__all__ = [
    "DeviceCoverage",
    "check_writable",
    "coverage_of",
    "junit_properties",
    "reported",
    "table",
    "write_html",
]

_SHOWN = 40  # never-reached cells listed in the terminal; the HTML has them all


@dataclass
class DeviceCoverage:
    key: DeviceKey
    counts: Counter[Cell]
    reach: Reach

    @property
    def reachable(self) -> set[Cell]:
        return self.reach.cells

    @property
    def reached(self) -> set[Cell]:
        return set(self.counts) & self.reachable

    @property
    def missed(self) -> list[Cell]:
        return sorted(self.reachable - set(self.counts))

    @property
    def outside(self) -> list[Cell]:
        """Reached, but the model's walk never produced it: a gap in the walk."""
        return sorted(set(self.counts) - self.reachable)

    def summary(self) -> str:
        n, total = len(self.reached), len(self.reachable)
        extra = f"; {len(self.outside)} reached outside the walk" if self.outside else ""
        return (
            f"{self.key}: {n}/{total} reachable cells reached "
            f"({100 * n / total if total else 100:.0f}%), {sum(self.counts.values())} calls{extra}"
        )


def coverage_of(recorder: Recorder) -> list[DeviceCoverage]:
    """Each device's counts next to the cells its model can produce."""
    found = []
    for key, counts in sorted(recorder.counts.items()):
        reach = explore(key.function, kernel_profile(key.kernel), key.stimulus)
        found.append(DeviceCoverage(key, counts, reach))
    return found


def table(coverages: Iterable[DeviceCoverage], shown: int = _SHOWN) -> str:
    """The terminal report: never-reached cells first, then reached per row."""
    lines = ["state-space coverage (a cell: index action data range state outcome)"]
    for cov in coverages:
        lines.append(cov.summary())
        missed = cov.missed
        if missed:
            lines.append(f"  never reached ({len(missed)}):")
            lines += [f"    {cell}" for cell in missed[:shown]]
            if len(missed) > shown:
                lines.append(f"    ... and {len(missed) - shown} more (--coverage-html lists all)")
        for cell in cov.outside:
            lines.append(f"  reached, not in the model's walk: {cell}")
        rows: dict[str, list[int]] = {}
        for cell in cov.reachable:
            tally = rows.setdefault(cell.row, [0, 0])
            tally[1] += 1
            tally[0] += cell in cov.counts
        shown_rows = [f"{row} {got}/{of}" for row, (got, of) in sorted(rows.items(), key=_row_key)]
        lines.append("  reached/reachable by row: " + ", ".join(shown_rows))
    return "\n".join(lines)


def _row_key(item: tuple[str, list[int]]) -> tuple[int, str]:
    index = item[0].split()[0]
    return (INDEXES.index(index) if index in INDEXES else len(INDEXES), item[0])


def junit_properties(coverages: Iterable[DeviceCoverage]) -> list[tuple[str, str]]:
    """``vfio_coverage[DEVICE]``: reached/reachable; ``..._missed``: the cells, ``;``-separated."""
    props = []
    for cov in coverages:
        props.append((f"vfio_coverage[{cov.key}]", f"{len(cov.reached)}/{len(cov.reachable)}"))
        props.append((f"vfio_coverage_missed[{cov.key}]", "; ".join(map(str, cov.missed))))
    return props


# --- HTML ---------------------------------------------------------------------------------

_STYLE = """
body { font: 13px sans-serif; margin: 1em 2em; }
table { border-collapse: collapse; margin-bottom: 1em; }
th, td { border: 1px solid #ccc; padding: 2px 4px; text-align: center; }
th.row { text-align: left; white-space: nowrap; }
th.col { writing-mode: vertical-rl; transform: rotate(180deg); font-weight: normal; }
td.none { background: #eee; color: #aaa; }
code { white-space: pre; }
"""


def _color(fraction: float) -> str:
    """Red (nothing reached) through yellow to green (everything reached)."""
    hue = int(120 * fraction)
    return f"hsl({hue}, 70%, 75%)"


def _device_html(cov: DeviceCoverage) -> list[str]:
    reachable = cov.reachable
    rows = sorted({c.row for c in reachable}, key=lambda r: _row_key((r, [])))
    columns = [
        f"{r} {s}" for r in RANGES for s in STATES if any(c.column == f"{r} {s}" for c in reachable)
    ]
    info_cols = ["- -"] if any(c.action == "INFO" for c in reachable) else []
    columns = [c for c in columns if c != "- -"] + info_cols
    by_square: dict[tuple[str, str], list[Cell]] = {}
    for cell in reachable:
        by_square.setdefault((cell.row, cell.column), []).append(cell)
    out = [f"<h2>{html.escape(cov.summary())}</h2>", "<table><tr><th></th>"]
    out += [f'<th class="col">{html.escape(c)}</th>' for c in columns]
    out.append("</tr>")
    for row in rows:
        out.append(f'<tr><th class="row">{html.escape(row)}</th>')
        for column in columns:
            cells = sorted(by_square.get((row, column), []))
            if not cells:
                out.append('<td class="none" title="unreachable"></td>')
                continue
            got = [c for c in cells if c in cov.counts]
            title = "; ".join(
                f"{c.outcome} {cov.counts[c]}" if c in cov.counts else f"{c.outcome} NEVER"
                for c in cells
            )
            out.append(
                f'<td style="background:{_color(len(got) / len(cells))}" '
                f'title="{html.escape(row)} {html.escape(column)}: {html.escape(title)}">'
                f"{len(got)}/{len(cells)}</td>"
            )
        out.append("</tr>")
    out.append("</table>")
    missed = cov.missed
    out.append(f"<h3>Never reached ({len(missed)})</h3><code>")
    out += [html.escape(str(c)) for c in missed]
    out.append("</code>")
    if cov.outside:
        out.append("<h3>Reached but not produced by the model's walk</h3><code>")
        out += [html.escape(str(c)) for c in cov.outside]
        out.append("</code>")
    return out


def check_writable(path: Path, what: str) -> None:
    """Raise ``VfioHilError`` now unless ``path`` can be written at the end of the run."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise VfioHilError(f"{what} {path}: a directory", "give a file name, e.g. coverage.html")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise VfioHilError(
            f"{what} {path}: {parent} is not a directory this user can write",
            "create the directory first, or name a file in a writable one",
        )
    # access() says yes to root everywhere (/proc too): try it, leave nothing.
    existed = path.exists()
    try:
        with open(path, "a"):
            pass
    except OSError as exc:
        raise VfioHilError(
            f"{what} {path}: cannot be written ({exc.strerror or exc})",
            "name a file in a directory this user can write",
        ) from None
    if not existed:
        path.unlink(missing_ok=True)


def write_html(coverages: Iterable[DeviceCoverage], path: Path, title: str = "vfio-hil") -> None:
    """One static file: a heat map per device (rows: index action data;
    columns: range and state; a square's colour is the share of its reachable
    outcomes reached, its tooltip the outcomes and their counts)."""
    body = []
    for cov in coverages:
        body += _device_html(cov)
    page = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}: state-space coverage</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}: state-space coverage</h1>",
        "<p>A cell is one SET_IRQS request class: index, action, data type, range "
        "(in, end, past, overflow, zero), the index's state before the call, and the "
        "outcome; GET_IRQ_INFO calls are the INFO rows. Grey squares cannot occur on the "
        "device; a square's tooltip lists its outcomes and how often each was reached.</p>",
        *body,
        "</body></html>",
    ]
    path.write_text("\n".join(page) + "\n", encoding="utf-8")


@contextlib.contextmanager
def reported(enabled: bool, html_path: Path | None, title: str) -> Iterator[None]:
    """A command's ``--coverage`` / ``--coverage-html FILE``: record the block's
    cells, then print the table (and write the heat map).  FILE is checked first."""
    if not (enabled or html_path):
        yield
        return
    from vfio_hil._coverage.recorder import recording

    if html_path is not None:
        check_writable(html_path, "--coverage-html")
    with recording(Recorder(events=True)) as recorder:
        yield
    print("coverage: exploring the model for the reachable cells ...", flush=True)
    found = coverage_of(recorder)
    print(table(found))
    if html_path is not None:
        try:
            write_html(found, html_path, title)
        except OSError as exc:  # checked before the run; gone or full since
            raise VfioHilError(
                f"--coverage-html {html_path}: not written ({exc.strerror or exc})",
                "the table above is the same report",
            ) from None
        print(f"coverage: heat map written to {html_path}")
