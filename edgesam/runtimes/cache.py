"""Where runtimes keep converted models (OpenVINO IR, TensorRT engines). Standard library only."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

from edgesam.bundle.format import Bundle

__all__ = ["AUTO", "resolve_cache_dir", "user_cache_root", "writable_dir"]

AUTO = "auto"


def writable_dir(path: Path) -> bool:
    """Create ``path`` if needed and check that a file can be written in it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".probe-")
        os.close(fd)
        os.unlink(probe)
        return True
    except OSError:
        return False


def user_cache_root() -> Path:
    """``$XDG_CACHE_HOME/edgesam`` (default ``~/.cache/edgesam``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgesam"


def resolve_cache_dir(bundle: Bundle, cache_dir: str | os.PathLike[str] | None, runtime: str) -> Path | None:
    """The folder a runtime caches converted models in.

    Args:
        bundle: the bundle being loaded.
        cache_dir: ``"auto"``: ``<bundle>/<runtime>_cache`` when the bundle folder is writable,
            else ``<user cache>/<runtime>/<encoder sha256[:16]>``; a path: that folder (must be
            writable); None: no cache.
        runtime: ``"openvino"``, ``"tensorrt"``, ...

    Returns None (with a warning) when ``"auto"`` finds no writable folder.
    """
    if cache_dir is None:
        return None
    if str(cache_dir) != AUTO:
        path = Path(cache_dir)
        if not writable_dir(path):
            raise ValueError(f"{runtime} cache_dir {path} is not a writable folder; pass another one or None")
        return path
    candidates = (bundle.root / f"{runtime}_cache", user_cache_root() / runtime / bundle.sha256("encoder")[:16])
    for candidate in candidates:
        if writable_dir(candidate):
            return candidate
    warnings.warn(f"no writable folder for the {runtime} cache; converting the bundle on every load", stacklevel=3)
    return None
