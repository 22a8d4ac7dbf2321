"""Moved to :mod:`edgesam.bundle.catalogue` (the bottom layer); this name stays for old imports."""

from edgesam.bundle.catalogue import *  # noqa: F401,F403
from edgesam.bundle.catalogue import __all__  # noqa: F401
