"""The lab: on each kernel of the matrix, the real vfio-pci against the model.

Boots the kernel in QEMU with the edu and virtio devices bound to vfio-pci
and runs, inside the guest, the differential check, the state machine with
the whole ``ci`` profile and a mutant's counterexample replayed from YAML and
from C (all in tests/guest), the conformance suite (vfio_hil.suite), the
shipped scenarios and the docs' example test file.
Without QEMU, virtme-ng or the cached kernels these tests skip and say how
to get them; with CI=true they fail.

Each kernel gets two guests: one for the state machine (most of the time)
and one for everything else. Under TCG a guest keeps one host core busy, so
``VFIO_HIL_LAB_JOBS`` guests (default: one per core) run at once, the long
ones first; each test waits for its own guest.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import pytest

import vfio_hil.suite

pytestmark = pytest.mark.lab

KERNELS = os.environ.get("VFIO_HIL_LAB_KERNELS", "6.1 6.12 7").split()
TESTS = Path(__file__).resolve().parents[1]
GUEST_TESTS = TESTS / "guest"
# The docs' example test file, run by pytester against the lab's devices.
DOC_EXAMPLES = TESTS / "test_docs_examples.py"
SCENARIOS = TESTS.parent / "scenarios"
SUITE = Path(vfio_hil.suite.__file__).resolve().parent
GUEST_TIMEOUT_S = 1800.0  # the ci fuzz profile on two devices: ~15 min under TCG
FUZZ = GUEST_TESTS / "test_fuzz_guest.py"
PARTS = ("fuzz", "checks")  # submitted in this order: the long one first
JOBS = int(os.environ.get("VFIO_HIL_LAB_JOBS", str(os.cpu_count() or 1)))
# Each guest ends by GUEST_TIMEOUT_S; a test may wait for the guests ahead of it.
TEST_TIMEOUT_S = math.ceil(len(KERNELS) * len(PARTS) / max(JOBS, 1)) * GUEST_TIMEOUT_S + 120
HOW = "install them with `bash .ci/lab.sh` (qemu-system-x86, virtme-ng, the kernels)"


def _unavailable(what: str) -> None:
    message = f"the lab needs {what}; {HOW}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _missing(spec: str) -> str | None:
    """What the lab lacks to boot ``spec``, or None."""
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64"
    try:
        import virtme.commands.run  # noqa: F401
    except ImportError:
        return "virtme-ng (pip install 'vfio-hil[lab]')"
    if _find(spec) is None:
        return f"kernel {spec} in the cache (vfio-hil lab fetch --kernel {spec})"
    return None


def _find(spec: str) -> Any:
    from vfio_hil._lab.kernels import cached_kernels, matches, parse_spec

    (kernel_spec,) = parse_spec(spec)
    hits = [k for k in cached_kernels() if matches(kernel_spec, k)]
    return hits[-1] if hits else None


def _command(part: str) -> list[str]:
    pytest_args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    pytest_args += ["-o", "addopts="]
    if part == "fuzz":
        return [*pytest_args, "-s", str(FUZZ)]  # -s: examples and steps per second
    paths = [str(p) for p in (GUEST_TESTS, SUITE, DOC_EXAMPLES, SCENARIOS)]
    return [*pytest_args, f"--ignore={FUZZ}", *paths]


class _Prefixed:
    """A stream that labels each line: two guests echo at once."""

    def __init__(self, label: str, out: IO[str]) -> None:
        self.label, self.out = label, out

    def write(self, text: str) -> int:
        for line in text.splitlines(keepends=True):
            self.out.write(f"[{self.label}] {line}")
        return len(text)

    def flush(self) -> None:
        self.out.flush()


def _run(spec: str, part: str, results: Path) -> Any:
    from vfio_hil._lab.run import run_lab

    (result,) = run_lab(
        [_find(spec)],
        _command(part),
        timeout=GUEST_TIMEOUT_S,
        results_dir=results,
        echo=_Prefixed(f"{spec} {part}", sys.stderr),  # type: ignore[arg-type]
        env={"VFIO_HIL_DIFF_SEEDS": os.environ.get("VFIO_HIL_DIFF_SEEDS", "20")},
    )
    return result


@pytest.fixture(scope="module")
def lab_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[tuple[str, str], Future[Any]]]:
    """Start a guest for every selected (kernel, part) the lab can boot."""
    from vfio_hil._lab.run import stop_all_guests

    wanted = [
        (item.callspec.params["spec"], item.callspec.params["part"])
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.originalname == "test_kernel_agrees_with_the_model_and_passes_the_suite"
    ]
    wanted.sort(key=lambda job: PARTS.index(job[1]))
    pool = ThreadPoolExecutor(max_workers=max(JOBS, 1), thread_name_prefix="lab")
    runs = {
        (spec, part): pool.submit(_run, spec, part, tmp_path_factory.mktemp(f"{spec}-{part}"))
        for spec, part in wanted
        if _missing(spec) is None
    }
    # SIGTERM (a timeout, a cancelled job) unwinds like Ctrl-C, through here.
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main else None
    try:
        yield runs
    finally:  # interrupted or done: no guest outlives the session
        pool.shutdown(wait=False, cancel_futures=True)
        stop_all_guests()
        pool.shutdown(wait=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@pytest.mark.timeout(TEST_TIMEOUT_S)  # each guest's own hard timeout fires first
@pytest.mark.parametrize("part", PARTS)
@pytest.mark.parametrize("spec", KERNELS)
def test_kernel_agrees_with_the_model_and_passes_the_suite(
    spec: str, part: str, lab_runs: dict[tuple[str, str], Future[Any]]
) -> None:
    missing = _missing(spec)
    if missing is not None:
        _unavailable(missing)
    result = lab_runs[(spec, part)].result()
    output = result.results_dir / "output.log"
    tail = output.read_text()[-6000:] if output.exists() else "(no output)"
    assert result.ok, f"{result.summary()}\n{result.error or ''}\n{tail}"
