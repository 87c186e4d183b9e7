"""The lab: boot real Debian kernels in QEMU and run a command against vfio-pci.

Modules:

- ``kernels``: resolve kernel specs (``6.1``, ``6.12``, ``7``, ``newest``,
  ``all``, a local path) and fetch Debian packages into a private cache.
- ``apt``: a private apt configuration (sources, lists, archives) that never
  touches the host's apt state.
- ``qemu``: find QEMU and virtme-ng, probe KVM, device presets, and the pure
  argv builder for ``virtme-run``.
- ``console``: scan a guest console log for kernel Oops/BUG/panic/lockups.
- ``guest``: the in-guest side (stdlib only): bind devices to vfio-pci and run
  the command.
- ``run``: host orchestration with a hard timeout.
- ``cli``: ``vfio-hil lab ...``.

This package's ``__init__`` imports nothing: ``guest`` runs inside minimal
guests and must not drag host-side modules in.
"""
