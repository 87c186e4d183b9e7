"""Compiling a benchmark's C baseline (the same loop as the Python one)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from vfio_hil._errors import VfioHilError

__all__ = ["compile_c"]

COMPILE_TIMEOUT_S = 120


def compile_c(source: Path, workdir: Path) -> Path:
    """``gcc -O2 -Wall`` ``source`` against <linux/vfio.h> into ``workdir``."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise VfioHilError("gcc not found", "apt-get install gcc linux-libc-dev")
    binary = workdir / source.stem
    subprocess.run(
        [gcc, "-O2", "-Wall", "-o", str(binary), str(source)],
        check=True,
        timeout=COMPILE_TIMEOUT_S,
        capture_output=True,
    )
    return binary
