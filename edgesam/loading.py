"""One factory for a :class:`~edgesam.SamPredictor`: ``edgesam.load_predictor(MODEL, ...)``.

``MODEL`` is what every command reads and what Python code passes around:

* a **bundle folder** (``edgesam export`` / ``quantize`` / ``deploy`` output): runs on an ONNX
  runtime, by default the backend recorded by ``edgesam deploy``, else onnxruntime; no torch;
* a **checkpoint file** (``.pth`` / ``.pt`` / ``.safetensors``, the official files as published;
  any other file is read as one too, and refused with the reason when it is not): runs on torch;
* a **model name** (``edgesam-demo``, ``mobile_sam``, ...; see ``edgesam models``): the
  checkpoint of that name (embedded, cached or downloaded once), run on torch.

This module sits above ``predictor``, ``runtimes`` and ``models``; it imports torch only when a
checkpoint is loaded, and imports nothing heavy at module import (the cold-start benchmark
times the runtime imports as part of loading).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from edgesam.bundle import METADATA_FILE

if TYPE_CHECKING:
    from edgesam.predictor import SamPredictor

__all__ = ["ModelRef", "load_predictor", "resolve_model", "thread_options"]



@dataclass(frozen=True)
class ModelRef:
    """What a ``MODEL`` argument names.

    Attributes:
        kind: ``"bundle"`` (a bundle folder) or ``"checkpoint"`` (a file or a model name).
        path: the bundle folder or checkpoint file; for a model name, the name itself
            (resolved, and downloaded if needed, when the model is loaded).
        name: the argument as given.
    """

    kind: Literal["bundle", "checkpoint"]
    path: str
    name: str


def resolve_model(model: str | os.PathLike[str]) -> ModelRef:
    """Classify ``model`` as a bundle folder, a checkpoint file or a model name.

    Raises:
        TypeError: ``model`` is not a string or path.
        FileNotFoundError: a path (it has a folder separator or a file suffix) that does not exist.
        ValueError: a folder without ``edgesam.json``, or an unknown model name (the message
            lists the known ones). Any other file is taken for a checkpoint: loading it says
            what it is when it is not one (text, empty, an unknown binary format).
    """
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a model name, a checkpoint file or a bundle folder, "
                        f"got {type(model).__name__}")  # fmt: skip
    text = os.fspath(model)
    if not text.strip():
        raise ValueError("model is empty; give a model name (see `edgesam models`), a checkpoint file or a bundle folder")
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / METADATA_FILE).is_file():
            raise ValueError(f"{text} is a folder without {METADATA_FILE}, so not an edgesam bundle "
                             "(make one with `edgesam export MODEL -o DIR`)")  # fmt: skip
        return ModelRef("bundle", str(path), text)
    if path.is_file():
        if path.name == METADATA_FILE:
            return ModelRef("bundle", str(path.parent), text)
        return ModelRef("checkpoint", str(path), text)  # its bytes are judged when it is read
    if os.sep in text or (os.altsep and os.altsep in text) or path.suffix:
        raise FileNotFoundError(f"{text}: no such checkpoint file or bundle folder")
    from edgesam.bundle.catalogue import list_models

    known = list_models()
    if text not in known:
        raise ValueError(f"unknown model {text!r}: not a file or folder here, and not a model name "
                         f"({', '.join(known)}; see `edgesam models`)")  # fmt: skip
    return ModelRef("checkpoint", text, text)


def thread_options(backend: str, threads: int | None) -> dict[str, Any]:
    """Backend constructor keywords that set the intra-op thread count (empty for None).

    torch has no per-model setting (:func:`load_predictor` calls ``torch.set_num_threads``);
    TensorRT runs on the GPU.
    """
    if threads is None or backend in ("torch", "tensorrt"):
        return {}
    if backend == "onnxruntime":
        return {"intra_op_threads": int(threads)}
    if backend == "openvino":
        return {"config": {"INFERENCE_NUM_THREADS": int(threads)}}
    return {}


def load_predictor(
    model: str | os.PathLike[str],
    *,
    backend: str | None = None,
    threads: int | None = None,
    precision: str | None = None,
    memory: str | None = None,
    device: Any = None,
    check: bool | None = None,
    arch: str | None = None,
    **options: Any,
) -> SamPredictor:
    """A :class:`~edgesam.SamPredictor` for ``model``.

    Args:
        model: a bundle folder, a checkpoint file (``.pth``/``.pt``/``.safetensors``) or a
            model name (see :func:`resolve_model`).
        backend: ``"torch"``, ``"onnxruntime"``, ``"openvino"`` or ``"tensorrt"``. None: torch
            for a checkpoint; for a bundle the backend ``edgesam deploy`` recorded in it, else
            onnxruntime. A checkpoint runs on torch only (export it to a bundle for the others).
        threads: intra-op threads (torch: ``torch.set_num_threads``, process-wide).
        precision: float precision (``"fp32"``, ``"bf16"``, ``"fp16"``); None: the model's own.
            A bundle run below its own precision is checked against its golden outputs.
        memory: memory mode of a bundle backend (``"default"``, ``"low"``, ``"runtime"``).
        device: torch device (``"cpu"``, ``"cuda:0"``), OpenVINO device (``"CPU"``, ``"GPU"``)
            or TensorRT GPU index.
        check: False accepts a lowered ``precision`` without the golden-output check.
        arch: expected architecture of a checkpoint (another one is refused).
        **options: further keywords of the backend's constructor (``providers=``, ``config=``,
            ``cache_dir=``, torch ``dtype=`` ...).

    Returns:
        A predictor whose ``backend`` runs the model.

    Raises:
        FileNotFoundError: the path does not exist (or a named checkpoint is not cached, offline).
        ValueError: not a bundle/checkpoint/model name, an unreadable or mismatched checkpoint,
            an option the chosen backend does not take, a bad ``threads``.
        ImportError: a checkpoint on an install without torch (the message says what to install
            and how to run a bundle instead), or a runtime that is not installed.
    """
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    ref = resolve_model(model)
    if ref.kind == "checkpoint":
        return _checkpoint_predictor(ref, backend=backend, threads=threads, precision=precision, memory=memory,
                                     device=device, check=check, arch=arch, options=options)  # fmt: skip
    if arch is not None:
        raise ValueError("arch= applies to checkpoints; a bundle records its own")
    from edgesam.bundle import load_bundle
    from edgesam.predictor import SamPredictor
    from edgesam.runtimes.loader import DEFAULT_BACKEND, deployed_choice, load_backend, merge_options

    bundle = load_bundle(ref.path)  # read (and checked) once, for the choice and the backend
    choice = deployed_choice(bundle)
    chosen = backend or (DEFAULT_BACKEND if choice is None else str(choice["backend"]))
    extra: dict[str, Any] = {}
    for key, value in (("precision", precision), ("memory", memory), ("device", device)):
        if value is not None:
            extra[key] = value
    if check is not None:
        extra["check"] = check
    # explicit options > precision/memory/device/check > threads > the options deploy recorded
    # (load_backend merges those under these)
    options = merge_options(merge_options(options, extra), thread_options(chosen, threads))
    if chosen == "onnxruntime" and "device" in options:
        raise ValueError("the onnxruntime backend picks its device through providers=, not device=")
    if chosen == "tensorrt" and isinstance(options.get("device"), str) and options["device"].isdigit():
        options["device"] = int(options["device"])  # a GPU index from the command line
    if chosen == "tensorrt" and "memory" in options:
        raise ValueError("the tensorrt backend has no memory modes (memory= applies to onnxruntime and openvino)")
    return SamPredictor(load_backend(bundle, backend, **options))


def _checkpoint_predictor(ref: ModelRef, *, backend: str | None, threads: int | None, precision: str | None,
                          memory: str | None, device: Any, check: bool | None, arch: str | None,
                          options: dict[str, Any]) -> SamPredictor:  # fmt: skip
    if backend not in (None, "torch"):
        raise ValueError(f"{ref.name} is a checkpoint, which runs on torch; to run it on {backend}, export it "
                         f"first: `edgesam export {ref.name} -o BUNDLE` (or `edgesam deploy {ref.name} -o BUNDLE`)")
    if memory is not None:
        raise ValueError("memory= applies to bundle backends (onnxruntime, openvino), not to a torch checkpoint")
    if check is False:
        raise ValueError("check= applies to a bundle run below its own precision (a checkpoint has no golden outputs)")
    from edgesam.predictor import SamPredictor

    try:
        import torch

        from edgesam.hub import load_model
        from edgesam.runtimes.torch_backend import TorchBackend
    except ImportError as exc:
        from edgesam.torch_hint import is_torch_missing, torch_missing_error

        if is_torch_missing(exc):
            raise torch_missing_error(f"checkpoint {ref.name}", exc) from exc
        raise
    if threads is not None:
        torch.set_num_threads(threads)
    dtype = options.pop("dtype", None)
    if isinstance(dtype, str):
        if not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise ValueError(f"dtype {dtype!r} is not a torch dtype")
        dtype = getattr(torch, dtype)
    torch_device = "cpu" if device is None else device
    sam = load_model(ref.path, arch, device=torch_device)
    return SamPredictor(TorchBackend(sam, device=torch_device, dtype=dtype, precision=precision, **options))
