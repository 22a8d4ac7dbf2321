"""Open a bundle folder with a named runtime backend (numpy only; the runtime loads lazily)."""

from __future__ import annotations

import os
from typing import Any

from edgesam.runtimes.base import Backend
from edgesam.runtimes.registry import get_backend_class

__all__ = ["load_backend"]


def load_backend(bundle_dir: str | os.PathLike[str], backend: str = "onnxruntime", **options: Any) -> Backend:
    """Construct backend ``backend`` for the bundle in ``bundle_dir``.

    Args:
        bundle_dir: a folder written by :func:`edgesam.export.export_bundle`.
        backend: a registered name: ``"onnxruntime"``, ``"openvino"`` or ``"tensorrt"``.
        **options: keyword arguments of that backend's constructor (providers, threads,
            device, precision, cache_dir, ...).

    Raises:
        ValueError: unknown backend name, or ``"torch"`` (a bundle holds ONNX graphs; run a
            torch model with ``SamPredictor(edgesam.load_model(...))``).
        BackendUnavailableError: the runtime is not installed (the message names the pip extra).
        BundleError: the folder is not a valid, intact bundle.
    """
    if backend == "torch":
        raise ValueError(
            "a bundle holds ONNX graphs, which the torch backend does not run; pick 'onnxruntime', "
            "'openvino' or 'tensorrt', or run the torch model with SamPredictor(edgesam.load_model(...))"
        )
    cls = get_backend_class(backend)
    return cls(bundle_dir, **options)
