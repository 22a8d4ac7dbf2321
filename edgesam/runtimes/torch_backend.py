"""Backend running a torch :class:`~edgesam.models.sam.Sam` model (numpy in, numpy out).

torch is imported when a :class:`TorchBackend` is constructed, not when this module is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from edgesam.runtimes.base import import_runtime
from edgesam.runtimes.precision import normalize_precision

if TYPE_CHECKING:
    import torch

__all__ = ["TorchBackend"]


def _as_numpy_stats(buffer: Any, name: str) -> np.ndarray:
    values = np.asarray(buffer.detach().float().cpu().numpy(), dtype=np.float32).reshape(-1)
    if values.shape != (3,):
        raise ValueError(f"model.{name} must hold 3 values (RGB), got shape {tuple(buffer.shape)}")
    return values


class TorchBackend:
    """Run ``Sam.encode`` / ``Sam.decode`` under ``torch.inference_mode``.

    Args:
        model: a :class:`edgesam.models.sam.Sam` (anything with ``encode``, ``decode``,
            ``image_size``, ``pixel_mean``/``pixel_std`` buffers of shape ``(3, 1, 1)`` and
            ``mask_threshold``). It is put in eval mode and moved to ``device``/``dtype``
            in place.
        device: torch device for the computation, e.g. ``"cpu"`` or ``"cuda"``.
        dtype: computation dtype (``torch.float32`` when None; ``torch.float16`` or
            ``torch.bfloat16`` for reduced precision). Inputs are cast to it, outputs are
            returned as float32.
        precision: the same as a word, as on every backend: ``"fp32"``, ``"bf16"`` or
            ``"fp16"`` (give ``dtype`` or ``precision``, not both). A torch model carries no
            golden outputs, so a lowered precision is not checked here: compare it with
            :func:`edgesam.fidelity.compare_predictors`.

    Attributes:
        precision, effective_precision: the precision word of ``dtype``.

    Calls from several threads at once are safe: the backend holds no per-call state.
    """

    name = "torch"

    def __init__(self, model: Any, *, device: Any = "cpu", dtype: "torch.dtype | None" = None,
                 precision: str | None = None) -> None:  # fmt: skip
        torch = import_runtime("torch", backend="torch", extra="torch")
        word = normalize_precision(precision)
        if word is not None:
            if dtype is not None:
                raise ValueError("give dtype= or precision=, not both")
            dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[word]
        for attr in ("encode", "decode", "image_size", "pixel_mean", "pixel_std"):
            if not hasattr(model, attr):
                raise TypeError(f"TorchBackend needs an edgesam Sam model; {type(model).__name__} has no {attr!r}")
        self._torch = torch
        self.device = torch.device(device)
        self.dtype = torch.float32 if dtype is None else dtype
        if not isinstance(self.dtype, torch.dtype) or not self.dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        names = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
        self.precision = self.effective_precision = names.get(self.dtype, str(self.dtype).replace("torch.", ""))
        # Read the statistics before a possible cast to half precision.
        self.pixel_mean = _as_numpy_stats(model.pixel_mean, "pixel_mean")
        self.pixel_std = _as_numpy_stats(model.pixel_std, "pixel_std")
        self.image_size = int(model.image_size)
        self.mask_threshold = float(getattr(model, "mask_threshold", 0.0))
        self.model = model.eval().to(device=self.device, dtype=self.dtype)

    def __repr__(self) -> str:
        arch = getattr(self.model, "arch", type(self.model).__name__)
        return f"TorchBackend(arch={arch!r}, device={str(self.device)!r}, dtype={self.dtype})"

    def _tensor(self, array: np.ndarray, name: str) -> "torch.Tensor":
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{name} must be a numpy array, got {type(array).__name__}")
        array = np.ascontiguousarray(array, dtype=np.float32)
        if not array.flags.writeable:
            array = array.copy()
        return self._torch.from_numpy(array).to(device=self.device, dtype=self.dtype)

    def _numpy(self, tensor: "torch.Tensor") -> np.ndarray:
        return tensor.detach().to(device="cpu", dtype=self._torch.float32).numpy()

    def encode(self, image: np.ndarray) -> np.ndarray:
        """float32 ``[1, 3, S, S]`` (normalised, padded) -> float32 ``[1, C, S/16, S/16]``."""
        s = self.image_size
        if getattr(image, "shape", None) != (1, 3, s, s):
            raise ValueError(f"encode expects a [1, 3, {s}, {s}] array, got shape {getattr(image, 'shape', None)}")
        with self._torch.inference_mode():
            return self._numpy(self.model.encode(self._tensor(image, "image")))

    def decode(
        self,
        image_embeddings: np.ndarray,
        point_coords: np.ndarray,
        point_labels: np.ndarray,
        mask_input: np.ndarray,
        has_mask_input: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """See :meth:`edgesam.runtimes.base.Backend.decode` for shapes."""
        with self._torch.inference_mode():
            iou, masks = self.model.decode(
                self._tensor(image_embeddings, "image_embeddings"),
                self._tensor(point_coords, "point_coords"),
                self._tensor(point_labels, "point_labels"),
                self._tensor(mask_input, "mask_input"),
                self._tensor(has_mask_input, "has_mask_input"),
            )
            return self._numpy(iou), self._numpy(masks)
