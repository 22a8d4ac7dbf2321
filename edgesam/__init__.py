"""edgesam: Segment Anything on small machines.

The predictor and runtimes need only numpy + OpenCV (+ one runtime); torch is imported only
when a torch model is loaded or exported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .hub import load_model
    from .loading import load_predictor
    from .models.registry import build_sam
    from .predictor import SamPredictor

__all__ = ["SamPredictor", "SamAutomaticMaskGenerator", "build_sam", "list_models", "load_model", "load_predictor",
           "__version__"]

_LAZY = {
    "SamPredictor": ("edgesam.predictor", "SamPredictor"),
    "SamAutomaticMaskGenerator": ("edgesam.everything", "SamAutomaticMaskGenerator"),
    "load_model": ("edgesam.hub", "load_model"),
    "load_predictor": ("edgesam.loading", "load_predictor"),
    "build_sam": ("edgesam.models.registry", "build_sam"),
    "list_models": ("edgesam.bundle.catalogue", "list_models"),
}


def __getattr__(name: str) -> Any:
    """Import public names on first use, so ``import edgesam`` does not import torch."""
    if name in _LAZY:
        from importlib import import_module

        module, attr = _LAZY[name]
        try:
            value = getattr(import_module(module), attr)
        except ImportError as exc:
            from .torch_hint import is_torch_missing, torch_missing_error

            if is_torch_missing(exc):
                raise torch_missing_error(f"edgesam.{name}", exc) from exc
            raise
        globals()[name] = value
        return value
    raise AttributeError(f"module 'edgesam' has no attribute {name!r}")
