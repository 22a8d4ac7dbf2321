"""ONNX export and bundles.

:mod:`edgesam.bundle.format` (reading and validating bundles) needs only numpy, so runtimes
use it without torch; the exporter itself (:func:`export_bundle`) imports torch on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgesam.bundle.format import Bundle, BundleError, BundleIntegrityError, load_bundle

if TYPE_CHECKING:
    from edgesam.export.onnx_export import export_bundle
    from edgesam.export.verify import ExportVerificationError, Tolerance

__all__ = [
    "Bundle",
    "BundleError",
    "BundleIntegrityError",
    "ExportVerificationError",
    "Tolerance",
    "export_bundle",
    "load_bundle",
]

_LAZY = {
    "export_bundle": "edgesam.export.onnx_export",
    "ExportVerificationError": "edgesam.export.verify",
    "Tolerance": "edgesam.export.verify",
}


def __getattr__(name: str) -> Any:
    """Import the torch-based parts on first use."""
    if name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'edgesam.export' has no attribute {name!r}")
