"""The selftests in a lab guest: memory and hugepages for vfio_dma_mapping_test.

Its ``anonymous_hugetlb_1gb`` variants map a 1 GiB hugepage (``_2mb``: a 2 MiB
one) and skip when none is free.  A lab guest gets ``GUEST_MEMORY``, and
``--vfio-selftests`` in a lab guest (``VFIO_HIL_LAB=1``) reserves ``HUGEPAGES``
through sysfs before collecting (the guest is thrown away afterwards, so
nothing is left behind); on a real machine that is the user's call (the skip
reason says how).  The command stays a pytest command, so the lab still adds
its JUnit report and test markers.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["GUEST_KERNEL_ARGS", "GUEST_MEMORY", "HUGEPAGES", "reserve_hugepages"]

GUEST_MEMORY = "6G"  # a gigantic page needs 1 GiB of contiguous free memory after boot
# ...which a kernel without CONFIG_CONTIG_ALLOC (the lab's own, allnoconfig)
# cannot find at run time: reserved at boot instead, from memblock.
GUEST_KERNEL_ARGS = ("hugepagesz=1G", "hugepages=1")
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
