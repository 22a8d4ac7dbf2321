"""Moved to :mod:`edgesam.scenes` (a leaf module: numpy + OpenCV); this name stays for old imports."""

from edgesam.scenes import *  # noqa: F401,F403
from edgesam.scenes import __all__  # noqa: F401
from edgesam.scenes import _smooth_noise, _texture  # noqa: F401  (used by synthetic_video)
