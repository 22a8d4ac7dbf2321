"""Sub-commands of the ``edgesam`` command line (one module each)."""
