"""Shared base of the backends that run an exported bundle (ONNX Runtime, OpenVINO, TensorRT).

It reads and validates the bundle (:func:`edgesam.bundle.format.load_bundle`), exposes the
model constants the predictor needs, checks/casts the arrays of every call and implements
``encode``/``decode`` on top of one method each runtime class provides,
``_run(role, feeds) -> {output name: array}``. numpy only.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from edgesam.bundle.format import Bundle, BundleError, load_bundle
from edgesam.bundle.io_spec import DECODER_INPUTS, DECODER_OUTPUTS, ENCODER_INPUTS, ENCODER_OUTPUTS

__all__ = ["BundleBackend", "NonFiniteOutputError", "check_io_names"]


class NonFiniteOutputError(RuntimeError):
    """A backend produced NaN or inf where the model's outputs are finite."""


def check_io_names(role: str, path: Any, inputs: Sequence[str], outputs: Sequence[str],
                   want_in: Sequence[str], want_out: Sequence[str]) -> None:  # fmt: skip
    """Raise :class:`BundleError` unless a graph has the expected input/output names."""
    if set(inputs) != set(want_in) or not set(want_out) <= set(outputs):
        raise BundleError(
            f"{role} graph {path} has inputs {list(inputs)} and outputs {list(outputs)}; edgesam expects "
            f"inputs {list(want_in)} and outputs {list(want_out)}. Was it exported by another tool? "
            f"Re-export it with `edgesam export`."
        )


def _array(value: Any, name: str, ndim: int) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(value).__name__}")
    if value.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {value.shape}")
    if not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)):
        raise TypeError(f"{name} must hold numbers, got dtype {value.dtype}")
    return np.ascontiguousarray(value, dtype=np.float32)


class BundleBackend:
    """Loads a bundle and validates call arguments; subclasses run the graphs (``_run``).

    Attributes:
        bundle: the validated :class:`~edgesam.bundle.format.Bundle`.
        image_size, pixel_mean, pixel_std, mask_threshold: from the bundle metadata.
        embedding_shape: ``(1, 256, S/16, S/16)``.
    """

    name = "bundle"
    encoder_inputs = ENCODER_INPUTS
    encoder_outputs = ENCODER_OUTPUTS
    decoder_inputs = DECODER_INPUTS
    decoder_outputs = DECODER_OUTPUTS

    def __init__(self, bundle_dir: str | os.PathLike[str] | Bundle) -> None:
        self.bundle = bundle_dir if isinstance(bundle_dir, Bundle) else load_bundle(bundle_dir)
        runs_on = (self.bundle.metadata.get("quantization") or {}).get("runs_on")
        if runs_on and self.name not in runs_on:  # quantized bundles name the runtimes their files need
            raise BundleError(
                f"bundle {self.bundle.root} was quantized for {', '.join(runs_on)}; it cannot run on {self.name!r}. "
                f"Run it with backend {runs_on[0]!r} (--backend {runs_on[0]}), or quantize the fp32 bundle for "
                f"{self.name!r} with `edgesam quantize FP32_BUNDLE --backend {self.name} -o DIR`, which needs the full "
                "install (torch and onnx, see the README's Install section), not a runtime-only one."
            )
        self.image_size = self.bundle.image_size
        self.pixel_mean = self.bundle.pixel_mean
        self.pixel_std = self.bundle.pixel_std
        self.mask_threshold = self.bundle.mask_threshold
        self.embedding_shape = self.bundle.embedding_shape

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.bundle.root)!r}, arch={self.bundle.arch!r})"

    def io_names(self, role: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``(input names, output names)`` the bundle contract fixes for ``role``."""
        if role == "encoder":
            return self.encoder_inputs, self.encoder_outputs
        return self.decoder_inputs, self.decoder_outputs

    def _encoder_input(self, image: Any) -> np.ndarray:
        s = self.image_size
        array = _array(image, "image", 4)
        if array.shape != (1, 3, s, s):
            raise ValueError(f"encode expects a [1, 3, {s}, {s}] array, got shape {array.shape}")
        return array

    def _decoder_feeds(
        self,
        image_embeddings: Any,
        point_coords: Any,
        point_labels: Any,
        mask_input: Any,
        has_mask_input: Any,
    ) -> dict[str, np.ndarray]:
        """Validate shapes (see :meth:`edgesam.runtimes.base.Backend.decode`) and cast to float32."""
        feeds = {
            "image_embeddings": _array(image_embeddings, "image_embeddings", 4),
            "point_coords": _array(point_coords, "point_coords", 3),
            "point_labels": _array(point_labels, "point_labels", 2),
            "mask_input": _array(mask_input, "mask_input", 4),
            "has_mask_input": _array(has_mask_input, "has_mask_input", 1),
        }
        _, c, h, w = self.embedding_shape
        if feeds["image_embeddings"].shape != self.embedding_shape:
            got = feeds["image_embeddings"].shape
            raise ValueError(f"image_embeddings must be {list(self.embedding_shape)}, got {got}")
        b, n, two = feeds["point_coords"].shape
        if two != 2 or b == 0:
            # N = 0 is valid: a prompt of a mask input alone (the official model then sees no sparse token)
            raise ValueError(f"point_coords must be [B, N, 2] with B >= 1, got {feeds['point_coords'].shape}")
        expected = {"point_labels": (b, n), "mask_input": (b, 1, 4 * h, 4 * w), "has_mask_input": (b,)}
        for key, shape in expected.items():
            if feeds[key].shape != shape:
                got = feeds[key].shape
                raise ValueError(f"{key} must be {list(shape)} to match point_coords {[b, n, 2]}, got {got}")
        return feeds

    #: Most prompts per decoder run (None: a batch runs whole); the memory modes set it.
    decoder_chunk: int | None = None

    def _run(self, role: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the ``role`` graph ("encoder" or "decoder"): float32 outputs by name."""
        raise NotImplementedError

    def encode(self, image: np.ndarray) -> np.ndarray:
        """float32 ``[1, 3, S, S]`` (normalised, padded) -> float32 ``[1, 256, S/16, S/16]``.

        Raises:
            NonFiniteOutputError: the embedding holds NaN or inf (a reduced precision can overflow;
                decoding such an embedding gives meaningless masks, and OpenVINO bf16 has crashed on it).
        """
        embedding = self._run("encoder", {"image": self._encoder_input(image)})["image_embeddings"]
        if not np.isfinite(embedding).all():
            precision = getattr(self, "effective_precision", None) or getattr(self, "precision", "?")
            raise NonFiniteOutputError(
                f"the {self.name} backend ({precision}) produced NaN/inf in the image embedding of bundle "
                f"{self.bundle.root.name}; run it at the bundle's own precision (precision=None)"
            )
        return embedding

    def decode(
        self,
        image_embeddings: np.ndarray,
        point_coords: np.ndarray,
        point_labels: np.ndarray,
        mask_input: np.ndarray,
        has_mask_input: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """See :meth:`edgesam.runtimes.base.Backend.decode`: ``-> ([B, 4], [B, 4, 4h, 4w])``."""
        feeds = self._decoder_feeds(image_embeddings, point_coords, point_labels, mask_input, has_mask_input)
        prompts, chunk = len(feeds["point_coords"]), self.decoder_chunk
        if chunk is None or prompts <= chunk:
            out = self._run("decoder", feeds)
            return out["iou_predictions"], out["low_res_masks"]
        # Chunks along the prompt axis: the decoder's activations grow by ~30 MB per prompt at 1024 px
        # and the runtimes keep the largest run they saw. image_embeddings is [1, ...], shared.
        parts = [self._run("decoder", {k: v if k == "image_embeddings" else v[i : i + chunk] for k, v in feeds.items()})
                 for i in range(0, prompts, chunk)]  # fmt: skip
        return tuple(np.concatenate([p[k] for p in parts]) for k in ("iou_predictions", "low_res_masks"))
