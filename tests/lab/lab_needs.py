"""What the lab tests need before they boot a guest, in one place.

Without QEMU, virtme-ng or a cached kernel a lab test skips and says how to
get it; with CI=true it fails instead (a CI job must not pass by skipping).
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

HOW = "install them with `bash .ci/lab.sh` (qemu-system-x86, virtme-ng, the kernels)"


def unavailable(what: str) -> None:
    """Skip (fail under CI=true) a test the lab cannot run."""
    message = f"the lab needs {what}; {HOW}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def find_kernel(spec: str) -> Any:
    """The cached kernel ``spec`` names, or None."""
    from vfio_hil._lab.kernels import cached_kernels, matches, parse_spec

    (kernel_spec,) = parse_spec(spec)
    hits = [k for k in cached_kernels() if matches(kernel_spec, k)]
    return hits[-1] if hits else None


def missing(spec: str) -> str | None:
    """What the lab lacks to boot ``spec``, or None."""
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64"
    try:
        import virtme.commands.run  # noqa: F401
    except ImportError:
        return "virtme-ng (pip install 'vfio-hil[lab]')"
    if find_kernel(spec) is None:
        from vfio_hil._lab.build import BUILT_SOURCE, COVERAGE_SOURCE
        from vfio_hil._lab.kernels import NAMED_SPECS

        source = NAMED_SPECS[spec].groups if spec in NAMED_SPECS else ()
        get = {
            (BUILT_SOURCE,): "vfio-hil lab build",
            (COVERAGE_SOURCE,): "vfio-hil lab build --coverage",
        }.get(source, f"vfio-hil lab fetch --kernel {spec}")
        return f"kernel {spec} in the cache ({get})"
    return None
