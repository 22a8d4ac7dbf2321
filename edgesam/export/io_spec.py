"""Moved to :mod:`edgesam.bundle.io_spec` (the bottom layer); this name stays for old imports."""

from edgesam.bundle.io_spec import *  # noqa: F401,F403
from edgesam.bundle.io_spec import __all__  # noqa: F401
