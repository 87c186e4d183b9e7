"""``vfio-hil``: the command line (``vfio_hil._cli`` has one module per subcommand).

    vfio-hil run [--device ADDRESS]... [--sim SPEC]... [--lab KERNEL] [-- PYTEST ARGS]
    vfio-hil diff TARGET [--seeds N] [--length N]
    vfio-hil fuzz (--device ADDRESS | --sim SPEC | --lab KERNEL) [--profile ci|dev|fuzz]
    vfio-hil replay FILE [--device ADDRESS | --sim PRESET[:VECTORS][@KERNEL]]
    vfio-hil bench loopback [--lab KERNEL]
    vfio-hil bench mutants [--only NAME]... [--no-shrink]
    vfio-hil devices
    vfio-hil info TARGET
    vfio-hil lab (run|fetch|kernels) ...

TARGET is a PCI address bound to vfio-pci or ``sim:PRESET[:VECTORS][@KERNEL]``.
Exit status: 0 success, 1 checks failed, 2 usage or setup error, 3 a lab guest
failed, 130 interrupted.
"""

from __future__ import annotations

import sys

from vfio_hil._cli import main, make_parser

__all__ = ["main", "make_parser"]

if __name__ == "__main__":
    sys.exit(main())
