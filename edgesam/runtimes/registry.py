"""Backend registry: name -> implementing class, imported only when asked for.

Looking a backend up never imports its runtime (torch, onnxruntime, ...): backend modules
import their runtime inside ``__init__``. :func:`available_backends` only checks whether
the packages can be found.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from edgesam.runtimes.base import BackendUnavailableError

__all__ = ["BACKENDS", "BackendEntry", "available_backends", "get_backend_class"]


@dataclass(frozen=True)
class BackendEntry:
    """Where a backend lives and what it needs.

    Attributes:
        target: ``"package.module:ClassName"`` of the implementation.
        requires: top-level packages the runtime needs.
        extra: pip extra of ``edgesam`` that installs them.
    """

    target: str
    requires: tuple[str, ...]
    extra: str

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]

    @property
    def class_name(self) -> str:
        return self.target.partition(":")[2]


BACKENDS: dict[str, BackendEntry] = {
    "torch": BackendEntry("edgesam.runtimes.torch_backend:TorchBackend", ("torch",), "torch"),
    "onnxruntime": BackendEntry(
        "edgesam.runtimes.onnxruntime_backend:OnnxRuntimeBackend", ("onnxruntime",), "onnxruntime"
    ),
    "openvino": BackendEntry(
        "edgesam.runtimes.openvino_backend:OpenVINOBackend", ("openvino",), "openvino"
    ),
    "tensorrt": BackendEntry(
        "edgesam.runtimes.tensorrt_backend:TensorRTBackend", ("tensorrt",), "tensorrt"
    ),
}


def _entry(name: str) -> BackendEntry:
    try:
        return BACKENDS[name]
    except (KeyError, TypeError):
        known = ", ".join(repr(n) for n in BACKENDS)
        raise ValueError(f"Unknown backend {name!r}; known backends: {known}") from None


def get_backend_class(name: str) -> type:
    """The class implementing backend ``name`` (imports its module, not its runtime).

    Raises:
        ValueError: ``name`` is not a registered backend (the message lists the known ones).
        BackendUnavailableError: the module implementing it is not part of this install.
    """
    entry = _entry(name)
    try:
        module = importlib.import_module(entry.module)
    except ModuleNotFoundError as exc:
        if exc.name != entry.module:
            raise
        raise BackendUnavailableError(
            f"Backend {name!r} is not available in this edgesam install ({exc})"
        ) from exc
    return getattr(module, entry.class_name)


def _missing(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True


def available_backends() -> dict[str, bool | str]:
    """Which backends can be used here: ``{name: True}`` or ``{name: reason}``.

    Only checks that the packages can be found (nothing heavy is imported); a runtime that
    is installed but cannot start (no GPU, say) shows up when the backend is constructed.
    """
    result: dict[str, bool | str] = {}
    for name, entry in BACKENDS.items():
        if _missing(entry.module):
            result[name] = f"module {entry.module} is not part of this install"
            continue
        absent = [pkg for pkg in entry.requires if _missing(pkg)]
        if absent:
            result[name] = (
                f"missing package(s) {', '.join(absent)}: pip install 'edgesam[{entry.extra}]'"
            )
        else:
            result[name] = True
    return result
