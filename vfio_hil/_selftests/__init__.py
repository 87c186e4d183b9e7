"""The kernel's own VFIO selftests (tools/testing/selftests/vfio) as pytest items.

``build``: builds them from a kernel tree against its own headers, cached
under the kernel cache.  ``harness``: the kselftest harness's listing and TAP
output.  ``modes``: which IOMMU modes a kernel and device offer.  ``collect``:
the pytest items (binary x fixture x variant x test x mode x device).
"""
