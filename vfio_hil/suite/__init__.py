"""The conformance suite: vfio-pci interrupt semantics, checked on any target.

Run it with ``vfio-hil run [--device ADDRESS | --sim PRESET]`` or
``pytest --pyargs vfio_hil.suite``.  Each check is parametrized by what the
device reports in GET_IRQ_INFO; where kernels differ, the reference model of
the running kernel says what to expect.
"""
