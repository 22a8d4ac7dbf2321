"""Inference backends behind one numpy protocol (no runtime is imported here)."""

from edgesam.runtimes.base import Backend, BackendUnavailableError, import_runtime
from edgesam.runtimes.registry import BACKENDS, available_backends, get_backend_class

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendUnavailableError",
    "available_backends",
    "get_backend_class",
    "import_runtime",
]
