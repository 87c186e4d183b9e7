"""The selftests in a lab guest: memory and hugepages for vfio_dma_mapping_test.

Its ``anonymous_hugetlb_1gb`` variants map a 1 GiB hugepage (``_2mb``: a 2 MiB
one) and skip when none is free.  A lab guest gets ``GUEST_MEMORY`` and, before
its command, reserves ``HUGEPAGES`` through sysfs (the guest is thrown away
afterwards, so nothing is left behind); on a real machine that is the user's
call (the skip reason says how).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["GUEST_MEMORY", "HUGEPAGES", "guest_command", "reserve_hugepages", "run_in_lab"]

GUEST_MEMORY = "6G"  # a gigantic page needs 1 GiB of contiguous free memory after boot
HUGEPAGES = {"hugepages-1048576kB": 1, "hugepages-2048kB": 8}
_SYSFS = Path("/sys/kernel/mm/hugepages")


def reserve_hugepages(root: Path = _SYSFS) -> str:
    """Reserve ``HUGEPAGES`` (where there are fewer); what was got, in one line."""
    got = []
    for size, want in HUGEPAGES.items():
        node = root / size / "nr_hugepages"
        try:
            if int(node.read_text()) < want:
                node.write_text(f"{want}\n")
            got.append(f"{size}: {int(node.read_text())}/{want}")
        except (OSError, ValueError) as err:
            got.append(f"{size}: not reserved ({err})")
    return "selftests hugepages: " + ", ".join(got)


def guest_command(command: Sequence[str]) -> list[str]:
    """``command`` run after the guest reserved its hugepages."""
    return [sys.executable, "-m", "vfio_hil._selftests.lab", "--", *command]


def run_in_lab(kernel: str, command: Sequence[str], iommu: str | None) -> int:
    """``in_lab`` with the selftests' guest memory (an ``Exit``)."""
    from vfio_hil._cli.common import lab_paths
    from vfio_hil._cli.lab import run_guarded

    guest, path = lab_paths(iommu)
    options: dict[str, object] = {"memory": GUEST_MEMORY}
    if guest != "intel":
        options["iommu"] = guest
    if path:
        options["env"] = {"VFIO_HIL_IOMMU": path}
    return run_guarded([kernel], guest_command(command), **options)


def main(argv: Sequence[str]) -> None:
    command = list(argv[1:] if argv[:1] == ["--"] else argv)
    if not command:
        sys.exit("usage: python -m vfio_hil._selftests.lab -- COMMAND...")
    print(reserve_hugepages(), file=sys.stderr, flush=True)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
