"""Moved to :mod:`edgesam.bundle.format` (the bottom layer); this name stays for old imports."""

from edgesam.bundle.format import *  # noqa: F401,F403
from edgesam.bundle.format import __all__  # noqa: F401
