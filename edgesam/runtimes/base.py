"""The runtime backend protocol: what the numpy predictor needs from an inference engine.

A backend wraps one loaded model (a torch module, an ONNX Runtime session, an OpenVINO
compiled model, a TensorRT engine) and exposes two numpy-in / numpy-out calls: ``encode`` for
the image encoder and ``decode`` for the prompt encoder + mask decoder. Everything else
(resizing, normalisation, prompt packing, mask upscaling) lives in :mod:`edgesam.predictor`,
so every backend gets identical pre- and post-processing.

This module imports numpy only.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Backend", "BackendUnavailableError", "import_runtime"]


class BackendUnavailableError(ImportError):
    """The runtime a backend needs (torch, onnxruntime, ...) is not installed or not usable."""


@runtime_checkable
class Backend(Protocol):
    """Inference engine behind :class:`edgesam.predictor.SamPredictor`.

    Attributes:
        name: registry name, e.g. ``"torch"``, ``"onnxruntime"``, ``"openvino"``, ``"tensorrt"``.
        image_size: side ``S`` of the square encoder input (1024 for the official models).
        pixel_mean: float32 ``(3,)`` RGB mean on the 0..255 scale.
        pixel_std: float32 ``(3,)`` RGB standard deviation on the 0..255 scale.
        mask_threshold: logit threshold that turns mask logits into a binary mask (0.0).

    Implementations must be safe to call from several threads at once: they hold only the
    model/session; per-image state lives in the predictors.
    """

    name: str
    image_size: int
    pixel_mean: np.ndarray
    pixel_std: np.ndarray
    mask_threshold: float

    def encode(self, image: np.ndarray) -> np.ndarray:
        """Image embedding of one pre-processed image.

        Args:
            image: float32 ``[1, 3, S, S]``, normalised with ``pixel_mean``/``pixel_std`` and
                zero padded bottom/right.

        Returns:
            float32 ``[1, 256, S/16, S/16]``.
        """
        ...

    def decode(
        self,
        image_embeddings: np.ndarray,
        point_coords: np.ndarray,
        point_labels: np.ndarray,
        mask_input: np.ndarray,
        has_mask_input: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Masks for ``B`` prompts on one image.

        Args:
            image_embeddings: float32 ``[1, 256, h, w]`` from :meth:`encode`.
            point_coords: float32 ``[B, N, 2]``, ``(x, y)`` pixels in the resized ``S x S`` frame.
            point_labels: float32 ``[B, N]``: -1 padding, 0 negative, 1 positive,
                2 box top-left, 3 box bottom-right.
            mask_input: float32 ``[B, 1, 4h, 4w]`` low-resolution mask logits (zeros if unused).
            has_mask_input: float32 ``[B]``, 1 where ``mask_input`` is used, else 0.

        Returns:
            ``(iou_predictions float32 [B, 4], low_res_masks float32 [B, 4, 4h, 4w])`` for all
            four mask tokens (token 0: single-mask output, tokens 1..3: multimask output).
        """
        ...


def import_runtime(module: str, *, backend: str, extra: str) -> ModuleType:
    """Import the runtime package of a backend, or explain how to install it.

    Args:
        module: importable name, e.g. ``"onnxruntime"``.
        backend: backend name used in the message.
        extra: the ``edgesam`` pip extra that installs the runtime.

    Raises:
        BackendUnavailableError: when the import fails.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"The {backend!r} backend needs the {module!r} package, which could not be imported "
            f"({exc}). Install it with: pip install 'edgesam[{extra}]'"
        ) from exc
