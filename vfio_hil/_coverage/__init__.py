"""State-space coverage: which cells of vfio-pci's SET_IRQS semantics a run reached."""
