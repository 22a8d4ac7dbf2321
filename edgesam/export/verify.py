"""Verification of exported graphs: ONNX Runtime against torch on real-looking inputs.

The inputs are a synthetic scene (textured shapes on a textured background, non-square so
the padding is exercised) pre-processed exactly as the predictor does, and prompts a user
would give: clicks on and off objects, boxes around objects, a low-resolution mask from an
earlier round, plus padding points. Several ``(B, N)`` combinations exercise the dynamic axes.

Comparisons (per output): ``max|onnx - torch| / max(1, max|torch|)`` against
:attr:`Tolerance.rel_error`, and the mean IoU of the binary masks (logits > threshold)
against :attr:`Tolerance.mask_iou`. A failure raises :class:`ExportVerificationError`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from edgesam.scenes import SceneConfig, generate_scene
from edgesam.bundle.io_spec import DECODER_INPUTS
from edgesam.export.wrappers import SamOfficialDecoderOnnx
from edgesam.fidelity import EXPORT_MASK_IOU, EXPORT_REL_ERROR, mask_iou, relative_error
from edgesam.prompt_geometry import click_inside
from edgesam.models.sam import Sam
from edgesam.predictor.transforms import apply_boxes, apply_coords, normalize_and_pad, resize_longest_side

__all__ = [
    "DecoderCase",
    "ExportVerificationError",
    "Tolerance",
    "VerificationInputs",
    "make_verification_inputs",
    "relative_error",
    "verify_export",
]


class ExportVerificationError(RuntimeError):
    """The exported graphs do not reproduce the torch model within the tolerance."""


@dataclass(frozen=True)
class Tolerance:
    """What an export must meet.

    Attributes:
        rel_error: bound on ``max|onnx - torch| / max(1, max|torch|)`` of every output.
        mask_iou: bound on the mean IoU of thresholded masks (onnx vs torch).
    """

    rel_error: float = EXPORT_REL_ERROR
    mask_iou: float = EXPORT_MASK_IOU


DecoderCase = dict[str, np.ndarray]  # the DECODER_INPUTS except image_embeddings


@dataclass(frozen=True)
class VerificationInputs:
    """Inputs for verification and for the bundle's golden file.

    Attributes:
        image: uint8 ``[H, W, 3]`` RGB scene.
        model_input: float32 ``[1, 3, S, S]`` normalised, padded.
        cases: decoder prompt sets; the first has ``B = 3, N = 3`` (points, a box, a mask
            input), the others vary ``B`` and ``N``.
    """

    image: np.ndarray
    model_input: np.ndarray
    cases: tuple[DecoderCase, ...]


def _case(coords: list[list[tuple[float, float]]], labels: list[list[float]], masks: np.ndarray,
          has_mask: list[float]) -> DecoderCase:  # fmt: skip
    return {
        "point_coords": np.asarray(coords, dtype=np.float32),
        "point_labels": np.asarray(labels, dtype=np.float32),
        "mask_input": np.ascontiguousarray(masks, dtype=np.float32),
        "has_mask_input": np.asarray(has_mask, dtype=np.float32),
    }


def make_verification_inputs(
    image_size: int, pixel_mean: np.ndarray, pixel_std: np.ndarray, *, seed: int = 0
) -> VerificationInputs:
    """A synthetic ``0.75 S x S`` scene and three prompt sets ``(B, N) = (3, 3), (1, 1), (5, 2)``."""
    s = int(image_size)
    scene = generate_scene(seed, SceneConfig(height=max(16, (3 * s) // 4), width=s, min_objects=3, max_objects=5))
    image, gt = scene.image, scene.masks
    hw = image.shape[:2]
    model_input = normalize_and_pad(resize_longest_side(image, s), pixel_mean, pixel_std, s)
    objs = [gt[i % len(gt)] for i in range(5)] if len(gt) else [np.ones(hw, bool)] * 5
    background = ~np.any(gt, axis=0) if len(gt) else np.zeros(hw, bool)
    clicks = [apply_coords(np.array([click_inside(m)]), hw, s)[0] for m in objs]
    off = apply_coords(np.array([click_inside(background) if background.any() else (0.0, 0.0)]), hw, s)[0]
    y0, x0 = np.nonzero(objs[1])[0].min(), np.nonzero(objs[1])[1].min()
    y1, x1 = np.nonzero(objs[1])[0].max(), np.nonzero(objs[1])[1].max()
    box = apply_boxes(np.array([[x0, y0, x1, y1]], np.float64), hw, s).reshape(2, 2)
    low = (s // 16) * 4
    prior = np.where(cv2.resize(objs[2].astype(np.uint8), (low, int(round(low * hw[0] / hw[1])))) > 0, 8.0, -8.0)
    mask_prior = np.full((low, low), -8.0, np.float32)
    mask_prior[: prior.shape[0], : prior.shape[1]] = prior
    zeros = np.zeros((low, low), np.float32)
    pad = (0.0, 0.0)
    first = _case(
        [
            [tuple(clicks[0]), tuple(off), pad],
            [tuple(box[0]), tuple(box[1]), tuple(clicks[1])],
            [tuple(clicks[2]), pad, pad],
        ],
        [[1, 0, -1], [2, 3, 1], [1, -1, -1]],
        np.stack([zeros, zeros, mask_prior])[:, None],
        [0, 0, 1],
    )
    single = _case([[tuple(clicks[3])]], [[1]], zeros[None, None], [0])
    many = _case([[tuple(c), pad] for c in clicks], [[1, -1]] * 5, np.stack([zeros] * 5)[:, None], [0] * 5)
    return VerificationInputs(image=image, model_input=model_input, cases=(first, single, many))


def _session(path: Path) -> Any:
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


class _Checker:
    def __init__(self, tolerance: Tolerance, threshold: float) -> None:
        self.tolerance, self.threshold = tolerance, threshold
        self.measured: dict[str, float] = {}
        self.failures: list[str] = []

    def values(self, name: str, actual: np.ndarray, reference: np.ndarray) -> None:
        err = relative_error(actual, reference)
        key = f"{name}_rel_error"
        self.measured[key] = max(self.measured.get(key, 0.0), err)
        if not err <= self.tolerance.rel_error:
            shapes = f" (shapes {actual.shape} vs {reference.shape})" if actual.shape != reference.shape else ""
            self.failures.append(f"{name}: relative error {err:.3g} > {self.tolerance.rel_error:g}{shapes}")

    def masks(self, name: str, actual: np.ndarray, reference: np.ndarray) -> None:
        same_shape = actual.shape == reference.shape
        iou = float(mask_iou(actual > self.threshold, reference > self.threshold).mean()) if same_shape else 0.0
        key = f"{name}_mask_iou"
        self.measured[key] = min(self.measured.get(key, 1.0), iou)
        if not iou >= self.tolerance.mask_iou:
            self.failures.append(f"{name}: mean mask IoU {iou:.4f} < {self.tolerance.mask_iou:g}")


@torch.inference_mode()
def verify_export(
    model: Sam,
    encoder_path: Path,
    decoder_path: Path,
    *,
    sam_decoder_path: Path | None = None,
    sam_single_mask: bool = True,
    inputs: VerificationInputs | None = None,
    tolerance: Tolerance | None = None,
) -> dict[str, Any]:
    """Run the ONNX files in ONNX Runtime (CPU) and compare with ``model`` in torch.

    Returns ``{"tolerance": {...}, "measured": {...}}`` (stored in the bundle metadata).

    Raises:
        ExportVerificationError: listing every comparison that missed the tolerance.
    """
    tol = tolerance or Tolerance()
    model = model.eval()
    data = inputs or make_verification_inputs(model.image_size, model.pixel_mean.flatten().numpy(),
                                              model.pixel_std.flatten().numpy())  # fmt: skip
    check = _Checker(tol, float(model.mask_threshold))
    encoder, decoder = _session(encoder_path), _session(decoder_path)
    ref_embed = model.encode(torch.from_numpy(data.model_input)).numpy()
    onnx_embed = encoder.run(None, {"image": data.model_input})[0]
    check.values("encoder", onnx_embed, ref_embed)
    for case in data.cases:
        args = [ref_embed] + [case[k] for k in DECODER_INPUTS[1:]]
        ref_iou, ref_masks = (t.numpy() for t in model.decode(*(torch.from_numpy(a) for a in args)))
        feeds = dict(zip(DECODER_INPUTS, args))
        iou, masks = decoder.run(None, feeds)
        check.values("decoder_iou", iou, ref_iou)
        check.values("decoder_masks", masks, ref_masks)
        check.masks("decoder", masks, ref_masks)
        _, e2e_masks = decoder.run(None, {**feeds, "image_embeddings": onnx_embed})
        check.masks("end_to_end", e2e_masks, ref_masks)
    if sam_decoder_path is not None:
        wrapper = SamOfficialDecoderOnnx(model, return_single_mask=sam_single_mask)
        session = _session(sam_decoder_path)
        for case in data.cases[:2]:
            one = {k: v[:1] for k, v in case.items()}
            orig = np.asarray(data.image.shape[:2], dtype=np.float32)
            args = [ref_embed] + [one[k] for k in DECODER_INPUTS[1:]] + [orig]
            ref = [t.numpy() for t in wrapper(*(torch.from_numpy(a) for a in args))]
            got = session.run(None, dict(zip((*DECODER_INPUTS, "orig_im_size"), args)))
            for name, a, r in zip(("masks", "iou", "low_res_masks"), got, ref):
                check.values(f"sam_decoder_{name}", a, r)
            check.masks("sam_decoder", got[0], ref[0])
    if check.failures:
        raise ExportVerificationError(
            "exported ONNX graphs do not match the torch model: " + "; ".join(check.failures)
            + ". The export was not written."
        )
    return {"tolerance": asdict(tol), "measured": check.measured, "runtime": "onnxruntime CPUExecutionProvider"}
