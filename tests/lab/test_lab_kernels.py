"""The lab: on each kernel of the matrix, the real vfio-pci against the model.

Boots the kernel in QEMU with the edu and virtio devices bound to vfio-pci.
Two guests per Debian kernel (their only open path is group + container):

- ``fuzz``: the state machine with the whole ``ci`` profile, run here on the
  host (``vfio-hil fuzz --lab K``: hypothesis and the model here, the devices
  behind the guest's agent);
- ``checks``: inside the guest, the differential check, a mutant's
  counterexample replayed from YAML and from C (tests/guest), the conformance
  suite (vfio_hil.suite), the shipped scenarios, the docs' example test file,
  and, on ``IN_GUEST_FUZZ_KERNEL``, a short in-guest run of the state machine:
  the agent path and the in-guest path must agree on the same kernel.

The lab's own kernel (``iommufd``, ``vfio-hil lab build``) has every open
path, so it runs once per path (``MODES``): the ``ci`` fuzz on the cdev path
only, and a checks guest on each of cdev (chosen by ``auto``), group +
container and NOIOMMU (a guest without an IOMMU), the latter two with the
short in-guest fuzz too.

Without QEMU, virtme-ng or the cached kernels these tests skip and say how
to get them; with CI=true they fail.  Under TCG a guest keeps one host core
busy, so ``VFIO_HIL_LAB_JOBS`` guests (default: one per core) run at once,
the long ones first; each test waits for its own guest.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

import vfio_hil.suite
from tests.lab.lab_needs import find_kernel, missing, unavailable

pytestmark = pytest.mark.lab

KERNELS = os.environ.get("VFIO_HIL_LAB_KERNELS", "6.1 6.12 7 iommufd").split()
TESTS = Path(__file__).resolve().parents[1]
GUEST_TESTS = TESTS / "guest"
# The docs' example test file, run by pytester against the lab's devices.
DOC_EXAMPLES = TESTS / "test_docs_examples.py"
SCENARIOS = TESTS.parent / "scenarios"
SUITE = Path(vfio_hil.suite.__file__).resolve().parent
GUEST_TIMEOUT_S = 1800.0  # the ci fuzz profile on two devices: ~15 min under TCG
FUZZ = GUEST_TESTS / "test_fuzz_guest.py"
IN_GUEST_FUZZ_KERNEL = "6.12"
IN_GUEST_FUZZ_EXAMPLES = "60"  # a check that both paths agree, not a second campaign
PARTS = ("fuzz", "checks")  # submitted in this order: the long one first
# (open path, parts) per kernel: Debian kernels have one path (auto: group);
# the built one has three, each checked, and the long fuzz runs on one.
BUILT = "iommufd"
# Its checks guest chooses nothing: auto must pick the cdev there (the guest
# tests check it), so everything in it runs over the cdev.
MODES = {
    BUILT: (
        ("cdev", ("fuzz",)),
        ("auto", ("checks",)),
        ("group", ("checks",)),
        ("noiommu", ("checks",)),
    )
}
DEBIAN_MODES = (("auto", PARTS),)
RUNS = [
    (spec, mode, part)
    for spec in KERNELS
    for mode, parts in MODES.get(spec, DEBIAN_MODES)
    for part in parts
]
JOBS = int(os.environ.get("VFIO_HIL_LAB_JOBS", str(os.cpu_count() or 1)))
# Each guest ends by GUEST_TIMEOUT_S; a test may wait for the guests ahead of it.
TEST_TIMEOUT_S = math.ceil(len(RUNS) / max(JOBS, 1)) * GUEST_TIMEOUT_S + 120


def _checks_command(spec: str, mode: str) -> list[str]:
    pytest_args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    pytest_args += ["-o", "addopts=", "-s"]  # -s: the in-guest fuzz's steps per second
    paths = [str(p) for p in (GUEST_TESTS, SUITE, DOC_EXAMPLES, SCENARIOS)]
    # The short in-guest fuzz: on one Debian kernel (the agent and in-guest
    # paths agree), and on each open path the long host-side fuzz skips.
    fuzz_here = spec == IN_GUEST_FUZZ_KERNEL or mode in ("group", "noiommu")
    ignore = [] if fuzz_here else [f"--ignore={FUZZ}"]
    return [*pytest_args, *ignore, *paths]


class _Progress:
    """Progress lines on the terminal while pytest captures the tests' output,
    so a CI log shows each guest boot, fuzz, and end as it happens (the
    capture manager is suspended for each line; the main thread is only
    waiting for the guests meanwhile)."""

    EVERY_S = 60.0  # a running fuzz says how far it got at most this often

    def __init__(self) -> None:
        self.capture: Any = None
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}

    def __call__(self, label: str, line: str) -> None:
        text = line.rstrip("\n")
        if "running;" in text:
            now = time.monotonic()
            if now - self._last.get(label, 0.0) < self.EVERY_S:
                return
            self._last[label] = now
        with self._lock:
            if self.capture is None:
                return
            with self.capture.global_and_fixture_disabled():
                sys.stderr.write(f"\n[{label}] {text}")
                sys.stderr.flush()


PROGRESS = _Progress()
# What of a guest's or a fuzz run's output is progress worth a CI log line.
_PROGRESS_LINE = re.compile(r"^(lab: |VFIO-HIL-LAB: (guest up|command (start|exit))|lab \S+ \S+: )")


class _Prefixed:
    """A stream that labels each line: two guests echo at once."""

    def __init__(self, label: str, out: IO[str]) -> None:
        self.label, self.out = label, out

    def write(self, text: str) -> int:
        for line in text.splitlines(keepends=True):
            self.out.write(f"[{self.label}] {line}")
            if _PROGRESS_LINE.match(line):
                PROGRESS(self.label, line)
        return len(text)

    def flush(self) -> None:
        self.out.flush()


@dataclass
class _HostFuzz:
    """``vfio-hil fuzz --lab K`` as a child process: its verdict and output."""

    summary: str
    ok: bool
    output: str


_CHILDREN: set[subprocess.Popen[str]] = set()


def _host_fuzz(spec: str, mode: str, results: Path) -> _HostFuzz:
    # A child process: hypothesis is not made to run two engines in one process.
    argv = [sys.executable, "-m", "vfio_hil", "fuzz", "--lab", spec, "--profile", "ci"]
    argv += ["--out", str(results / "counterexamples"), "--timeout", f"{GUEST_TIMEOUT_S:.0f}"]
    argv += [] if mode == "auto" else ["--iommu", mode]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=TESTS.parent
    )
    _CHILDREN.add(proc)
    out = _Prefixed(_label(spec, mode, "fuzz"), sys.stderr)
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if not line.startswith("["):  # the guest's own console stays in its log
            out.write(line)
            out.flush()
    code = proc.wait()
    _CHILDREN.discard(proc)
    tail = "".join(lines[-60:])
    return _HostFuzz(f"{shlex.join(argv[1:])}: exit {code}", code == 0, tail)


def _label(spec: str, mode: str, part: str) -> str:
    return f"{spec} {part}" if mode == "auto" else f"{spec} {mode} {part}"


def _run(spec: str, mode: str, part: str, results: Path) -> Any:
    from vfio_hil._lab.run import run_lab

    if part == "fuzz":
        return _host_fuzz(spec, mode, results)
    path = {} if mode == "auto" else {"VFIO_HIL_IOMMU": mode}
    (result,) = run_lab(
        [find_kernel(spec)],
        _checks_command(spec, mode),
        timeout=GUEST_TIMEOUT_S,
        results_dir=results,
        iommu="none" if mode == "noiommu" else "intel",
        echo=_Prefixed(_label(spec, mode, part), sys.stderr),  # type: ignore[arg-type]
        env={
            "VFIO_HIL_DIFF_SEEDS": os.environ.get("VFIO_HIL_DIFF_SEEDS", "20"),
            "VFIO_HIL_FUZZ_EXAMPLES": IN_GUEST_FUZZ_EXAMPLES,
            **path,
        },
    )
    return result


@pytest.fixture(scope="module")
def lab_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[tuple[str, str, str], Future[Any]]]:
    """Start a guest for every selected (kernel, path, part) the lab can boot."""
    from vfio_hil._lab.run import stop_all_guests

    wanted = [
        tuple(item.callspec.params["run"])
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.originalname == "test_kernel_agrees_with_the_model_and_passes_the_suite"
    ]
    wanted.sort(key=lambda job: PARTS.index(job[2]))
    PROGRESS.capture = request.config.pluginmanager.getplugin("capturemanager")
    pool = ThreadPoolExecutor(max_workers=max(JOBS, 1), thread_name_prefix="lab")
    runs = {
        (spec, mode, part): pool.submit(
            _run, spec, mode, part, tmp_path_factory.mktemp(f"{spec}-{mode}-{part}")
        )
        for spec, mode, part in wanted
        if missing(spec) is None
    }
    # SIGTERM (a timeout, a cancelled job) unwinds like Ctrl-C, through here.
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main else None
    try:
        yield runs
    finally:  # interrupted or done: no guest outlives the session
        pool.shutdown(wait=False, cancel_futures=True)
        stop_all_guests()
        for child in list(_CHILDREN):  # SIGTERM: it kills its own guest
            child.terminate()
        pool.shutdown(wait=True)
        PROGRESS.capture = None
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@pytest.mark.timeout(TEST_TIMEOUT_S)  # each guest's own hard timeout fires first
@pytest.mark.parametrize("run", RUNS, ids=["-".join(r).replace("-auto", "") for r in RUNS])
def test_kernel_agrees_with_the_model_and_passes_the_suite(
    run: tuple[str, str, str], lab_runs: dict[tuple[str, str, str], Future[Any]]
) -> None:
    spec = run[0]
    lacking = missing(spec)
    if lacking is not None:
        unavailable(lacking)
    result = lab_runs[run].result()
    if isinstance(result, _HostFuzz):
        assert result.ok, f"{result.summary}\n{result.output}"
        return
    output = result.results_dir / "output.log"
    tail = output.read_text()[-6000:] if output.exists() else "(no output)"
    assert result.ok, f"{result.summary()}\n{result.error or ''}\n{tail}"
