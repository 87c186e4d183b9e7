"""The pytest plugin (entry point ``vfio_hil = vfio_hil._plugin.plugin``)."""
