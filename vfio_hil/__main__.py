"""``python -m vfio_hil`` is ``vfio-hil``."""

import sys

from vfio_hil.cli import main

sys.exit(main())
