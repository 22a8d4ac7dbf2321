"""Moved to :mod:`edgesam.bundle.onnx_refs` (the bottom layer); this name stays for old imports."""

from edgesam.bundle.onnx_refs import *  # noqa: F401,F403
from edgesam.bundle.onnx_refs import __all__  # noqa: F401
