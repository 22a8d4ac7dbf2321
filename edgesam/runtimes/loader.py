"""Open a bundle folder with a named runtime backend (numpy only; the runtime loads lazily).

A bundle written by ``edgesam deploy`` records the backend, precision and options it chose
under ``deploy`` in ``edgesam.json``; :func:`load_backend` with no backend name runs that
choice, and warns when this machine differs from the one it was chosen on.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Mapping

from edgesam.bundle.format import Bundle, load_bundle
from edgesam.runtimes.base import Backend
from edgesam.runtimes.registry import get_backend_class

__all__ = ["DEFAULT_BACKEND", "deployed_choice", "load_backend", "merge_options"]

#: Backend of a bundle that records no deployment choice.
DEFAULT_BACKEND = "onnxruntime"


def deployed_choice(bundle: Bundle) -> Mapping[str, Any] | None:
    """The ``deploy`` record of ``edgesam.json`` (backend, precision, options, device_id, ...), or None."""
    choice = bundle.metadata.get("deploy")
    return choice if isinstance(choice, Mapping) and choice.get("backend") else None


def _current_device_id() -> str | None:
    try:
        from edgesam.hardware import device_id, hardware_fingerprint

        return device_id(hardware_fingerprint())
    except Exception:  # noqa: BLE001 - a failed probe must not stop a model from loading
        return None


def merge_options(options: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` under ``options``: keys of ``options`` win; dict values (e.g. OpenVINO's
    ``config``) are merged key by key."""
    out = dict(options)
    for key, value in extra.items():
        if isinstance(value, Mapping):
            out[key] = {**value, **dict(out.get(key) or {})}
        else:
            out.setdefault(key, value)
    return out


def load_backend(bundle_dir: str | os.PathLike[str] | Bundle, backend: str | None = None, **options: Any) -> Backend:
    """Construct backend ``backend`` for the bundle in ``bundle_dir``.

    Args:
        bundle_dir: a folder written by :func:`edgesam.export.export_bundle` or ``edgesam deploy``.
        backend: a registered name: ``"onnxruntime"``, ``"openvino"`` or ``"tensorrt"``. None:
            the choice recorded by ``edgesam deploy`` (with its options; ``options`` given here
            win, dict options such as OpenVINO's ``config`` key by key), else ``"onnxruntime"``.
        **options: keyword arguments of that backend's constructor (providers, threads,
            device, precision, check, cache_dir, ...).

    Raises:
        ValueError: unknown backend name, or ``"torch"`` (a bundle holds ONNX graphs; run a
            torch model with ``SamPredictor(edgesam.load_model(...))``).
        BackendUnavailableError: the runtime is not installed (the message names the pip extra).
        BundleError: the folder is not a valid, intact bundle.
    """
    if backend is None:
        bundle = bundle_dir if isinstance(bundle_dir, Bundle) else load_bundle(bundle_dir)
        bundle_dir = bundle
        choice = deployed_choice(bundle)
        if choice is None:
            backend = DEFAULT_BACKEND
        else:
            backend = str(choice["backend"])
            options = merge_options(options, dict(choice.get("options") or {}))
            recorded, here = choice.get("device_id"), _current_device_id()
            if recorded and here and recorded != here:
                warnings.warn(
                    f"bundle {bundle.root.name} was deployed for device {recorded!r}, this is {here!r}: the "
                    f"recorded choice ({backend}, {choice.get('precision')}) may not be the fastest faithful one "
                    f"here; run `edgesam deploy` on this machine", stacklevel=3)  # fmt: skip
    if backend == "torch":
        raise ValueError(
            "a bundle holds ONNX graphs, which the torch backend does not run; pick 'onnxruntime', "
            "'openvino' or 'tensorrt', or run the torch model with SamPredictor(edgesam.load_model(...))"
        )
    cls = get_backend_class(backend)
    return cls(bundle_dir, **options)
