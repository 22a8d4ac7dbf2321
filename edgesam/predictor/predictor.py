"""``SamPredictor``: SAM's interactive predictor over any :class:`~edgesam.runtimes.Backend`.

The interface is segment_anything's ``SamPredictor`` (same methods, arguments and output
shapes, numpy in and out), so existing code ports by changing the import. Pre- and
post-processing are numpy + OpenCV, identical for every backend; torch is never imported
here (a torch model passed in is wrapped in the torch backend, imported on demand).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgesam.predictor.images import to_rgb_uint8
from edgesam.predictor.postprocess import postprocess_masks, select_masks
from edgesam.predictor.prompts import DecoderInputs, pack_prompts
from edgesam.predictor.transforms import normalize_and_pad, resize_longest_side
from edgesam.runtimes.base import Backend

__all__ = ["SamPredictor"]

_NOT_SET = "An image must be set with .set_image(...) before mask prediction."


@dataclass(frozen=True)
class _ImageState:
    features: np.ndarray  # float32 [1, C, h, w]
    original_size: tuple[int, int]  # (H, W)
    input_size: tuple[int, int]  # (h, w) inside the S x S frame


def _resolve_backend(model_or_backend: Any) -> Backend:
    obj = model_or_backend
    if hasattr(obj, "image_encoder") and hasattr(obj, "mask_decoder"):
        from edgesam.runtimes.torch_backend import TorchBackend

        device = getattr(obj, "device", None)
        if device is None:
            device = next((p.device for p in obj.parameters()), "cpu") if hasattr(obj, "parameters") else "cpu"
        return TorchBackend(obj, device=device)
    missing = [a for a in ("encode", "decode", "image_size", "pixel_mean", "pixel_std") if not hasattr(obj, a)]
    if missing:
        raise TypeError(
            f"SamPredictor needs a runtime Backend or a torch Sam model; {type(obj).__name__} "
            f"lacks {', '.join(missing)}"
        )
    return obj


class SamPredictor:
    """Compute an image embedding once, then predict masks for many prompts quickly.

    Args:
        model_or_backend: a runtime backend (see :mod:`edgesam.runtimes`) or a torch
            ``Sam`` model, which is wrapped in ``TorchBackend`` on the model's device.

    One predictor holds one image; several predictors may share one backend across threads.
    A single predictor must not be used from several threads while ``set_image`` runs.
    """

    def __init__(self, model_or_backend: Any) -> None:
        self._backend = _resolve_backend(model_or_backend)
        self._mean = np.asarray(self._backend.pixel_mean, dtype=np.float32).reshape(3)
        self._std = np.asarray(self._backend.pixel_std, dtype=np.float32).reshape(3)
        self._state: _ImageState | None = None

    @classmethod
    def from_bundle(
        cls, path: str | os.PathLike[str], backend: str | None = None, **backend_options: Any
    ) -> SamPredictor:
        """A predictor running the exported bundle at ``path`` on ``backend`` (see
        :func:`edgesam.runtimes.loader.load_backend` for the backends and their options).

        With no ``backend``, a bundle written by ``edgesam deploy`` runs the backend,
        precision and options recorded there (warning when this machine differs from the one
        it was chosen on); any other bundle runs on ``"onnxruntime"``."""
        from edgesam.runtimes.loader import load_backend

        return cls(load_backend(path, backend, **backend_options))

    # ------------------------------------------------------------------ state
    @property
    def backend(self) -> Backend:
        """The runtime backend doing the inference."""
        return self._backend

    @property
    def is_image_set(self) -> bool:
        """Whether :meth:`set_image` has been called since the last reset."""
        return self._state is not None

    @property
    def original_size(self) -> tuple[int, int] | None:
        """``(H, W)`` of the current image, None when no image is set."""
        return None if self._state is None else self._state.original_size

    @property
    def input_size(self) -> tuple[int, int] | None:
        """``(h, w)`` of the resized image inside the ``S x S`` model input, or None."""
        return None if self._state is None else self._state.input_size

    def _require_state(self) -> _ImageState:
        state = self._state
        if state is None:
            raise RuntimeError(_NOT_SET)
        return state

    def reset_image(self) -> None:
        """Forget the current image and release its embedding (the predictor keeps no other
        per-image buffer)."""
        self._state = None

    # ------------------------------------------------------------------ image
    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        """Compute the embedding of ``image`` for the following ``predict`` calls.

        Args:
            image: ``uint8 [H, W, 3]`` in ``image_format`` order. Also accepted:
                grayscale ``[H, W]``/``[H, W, 1]`` (replicated to RGB), ``[H, W, 4]`` (alpha
                dropped), integer dtypes with values in 0..255, float images in [0, 1]
                (scaled by 255 and rounded). See :mod:`edgesam.predictor.images`.
            image_format: ``"RGB"`` or ``"BGR"``.

        Raises:
            TypeError / ValueError: unsupported dtype, shape, empty image, NaN/inf, values
                out of range, unknown ``image_format``.
        """
        rgb = to_rgb_uint8(image, image_format)
        self.reset_image()  # the previous embedding is not held while the new one is computed
        size = int(self._backend.image_size)
        resized = resize_longest_side(rgb, size)
        model_input = normalize_and_pad(resized, self._mean, self._std, size)
        original_size = (int(rgb.shape[0]), int(rgb.shape[1]))
        input_size = (int(resized.shape[0]), int(resized.shape[1]))
        del rgb, resized  # per-image buffers: only the model input lives through the encoder run
        features = np.asarray(self._backend.encode(model_input), dtype=np.float32)
        del model_input
        if features.ndim != 4 or features.shape[0] != 1:
            raise RuntimeError(f"backend.encode returned shape {features.shape}, expected [1, C, h, w]")
        self._state = _ImageState(features=features, original_size=original_size, input_size=input_size)

    def get_image_embedding(self) -> np.ndarray:
        """The current image's embedding, float32 ``[1, C, h, w]`` (C=256, h=w=S/16 for SAM).

        The array is the predictor's own (no copy); do not modify it in place.
        """
        if self._state is None:
            raise RuntimeError("An image must be set with .set_image(...) to generate an embedding.")
        return self._state.features

    # ------------------------------------------------------------------ prompts
    def predict(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks for one prompt on the current image.

        Args:
            point_coords: ``[N, 2]`` ``(x, y)`` pixel coordinates in the original image.
            point_labels: ``[N]``; 1 foreground, 0 background. Required with ``point_coords``.
            box: ``[4]`` XYXY box in original-image pixels.
            mask_input: ``[1, 4h, 4w]`` logits from an earlier call (``[1, 256, 256]`` for SAM).
            multimask_output: three masks (True) or one (False).
            return_logits: return float32 logits instead of bool masks.

        Returns:
            ``masks [C, H, W]`` (bool, or float32 logits), ``scores float32 [C]`` and
            ``low_res_logits float32 [C, 4h, 4w]``, with ``C`` = 3 or 1.

        With no prompt at all the decoder sees no point at all (``N = 0``: no padding point
        either), as the official prompt encoder does; the masks then come from ``mask_input``
        if given, else from the image embedding alone.

        Raises:
            ValueError: a point outside the image (``0 <= x <= W``, ``0 <= y <= H``; the message
                names the point and the image size), a box entirely outside it; boxes partly
                outside are clipped to the image with a ``UserWarning``. Also the prompt
                errors of :func:`edgesam.predictor.prompts.pack_prompts`.
        """
        state = self._require_state()
        inputs = self._pack(state, point_coords, point_labels, box, mask_input, batched=False)
        masks, scores, low_res = self._run(state, inputs, multimask_output, return_logits)
        return masks[0], scores[0], low_res[0]

    def predict_batch(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        boxes: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Masks for ``B`` prompts on the current image, decoded in one backend call.

        Args:
            point_coords: ``[B, N, 2]`` original-image pixels (same ``N`` for every prompt).
            point_labels: ``[B, N]`` in {0, 1}.
            boxes: ``[B, 4]`` XYXY boxes (e.g. detector output).
            mask_input: ``[B, 1, 4h, 4w]`` logits.
            multimask_output, return_logits: as in :meth:`predict`.

        Returns:
            ``masks [B, C, H, W]``, ``scores float32 [B, C]``, ``low_res float32 [B, C, 4h, 4w]``;
            row ``b`` equals ``predict`` with the ``b``-th prompt.

        Raises:
            ValueError: as :meth:`predict` (points outside the image; boxes partly outside are
                clipped with a warning).
        """
        state = self._require_state()
        inputs = self._pack(state, point_coords, point_labels, boxes, mask_input, batched=True)
        return self._run(state, inputs, multimask_output, return_logits)

    # ------------------------------------------------------------------ internals
    def _pack(
        self,
        state: _ImageState,
        point_coords: Any,
        point_labels: Any,
        boxes: Any,
        mask_input: Any,
        *,
        batched: bool,
    ) -> DecoderInputs:
        _, _, h, w = state.features.shape
        return pack_prompts(
            point_coords,
            point_labels,
            boxes,
            mask_input,
            original_size=state.original_size,
            image_size=int(self._backend.image_size),
            mask_size=(4 * h, 4 * w),
            batched=batched,
            check_bounds=True,
        )

    def _run(
        self, state: _ImageState, inputs: DecoderInputs, multimask_output: bool, return_logits: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        _, _, h, w = state.features.shape
        height, width = state.original_size
        n_masks = 3 if multimask_output else 1
        if inputs.batch_size == 0:
            dtype = np.float32 if return_logits else bool
            return (
                np.zeros((0, n_masks, height, width), dtype=dtype),
                np.zeros((0, n_masks), dtype=np.float32),
                np.zeros((0, n_masks, 4 * h, 4 * w), dtype=np.float32),
            )
        iou, low_res = self._backend.decode(
            state.features,
            inputs.point_coords,
            inputs.point_labels,
            inputs.mask_input,
            inputs.has_mask_input,
        )
        scores, low_res = select_masks(
            np.asarray(iou, dtype=np.float32), np.asarray(low_res, dtype=np.float32), multimask_output
        )
        masks = postprocess_masks(
            low_res,
            image_size=int(self._backend.image_size),
            input_size=state.input_size,
            original_size=state.original_size,
            mask_threshold=float(self._backend.mask_threshold),
            return_logits=return_logits,
        )
        return masks, np.ascontiguousarray(scores), np.ascontiguousarray(low_res)
