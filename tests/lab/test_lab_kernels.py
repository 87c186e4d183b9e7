"""The lab: on each kernel of the matrix, the real vfio-pci against the model.

Boots the kernel in QEMU with the edu and virtio devices bound to vfio-pci
and runs, inside the guest, the differential check, the state machine with
the whole ``ci`` profile and a mutant's counterexample replayed from YAML and
from C (all in tests/guest), the conformance suite (vfio_hil.suite), the
shipped scenarios and the docs' example test file.
Without QEMU, virtme-ng or the cached kernels these tests skip and say how
to get them; with CI=true they fail.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

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
GUEST_TIMEOUT_S = 2700.0  # the ci fuzz profile on two devices is most of it
HOW = "install them with `bash .ci/lab.sh` (qemu-system-x86, virtme-ng, the kernels)"


def _unavailable(what: str) -> None:
    message = f"the lab needs {what}; {HOW}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _kernel(spec: str) -> object:
    if shutil.which("qemu-system-x86_64") is None:
        _unavailable("qemu-system-x86_64")
    try:
        import virtme.commands.run  # noqa: F401
    except ImportError:
        _unavailable("virtme-ng (pip install 'vfio-hil[lab]')")
    from vfio_hil._lab.kernels import cached_kernels, matches, parse_spec

    (kernel_spec,) = parse_spec(spec)
    hits = [k for k in cached_kernels() if matches(kernel_spec, k)]
    if not hits:
        _unavailable(f"kernel {spec} in the cache (vfio-hil lab fetch --kernel {spec})")
    return hits[-1]


@pytest.mark.timeout(GUEST_TIMEOUT_S + 120)  # run_lab's own hard timeout fires first
@pytest.mark.parametrize("spec", KERNELS)
def test_kernel_agrees_with_the_model_and_passes_the_suite(spec: str, tmp_path: Path) -> None:
    from vfio_hil._lab.kernels import Kernel
    from vfio_hil._lab.run import run_lab

    kernel = _kernel(spec)
    assert isinstance(kernel, Kernel)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-o",
        "addopts=",
        str(GUEST_TESTS),
        str(SUITE),
        str(DOC_EXAMPLES),
        str(SCENARIOS),
    ]
    (result,) = run_lab(
        [kernel],
        command,
        timeout=GUEST_TIMEOUT_S,
        results_dir=tmp_path,
        echo=sys.stderr,
        env={"VFIO_HIL_DIFF_SEEDS": os.environ.get("VFIO_HIL_DIFF_SEEDS", "20")},
    )
    output = result.results_dir / "output.log"
    tail = output.read_text()[-6000:] if output.exists() else "(no output)"
    assert result.ok, f"{result.summary()}\n{result.error or ''}\n{tail}"
