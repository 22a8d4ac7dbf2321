"""From the decoder's low-resolution logits to image-sized masks.

SAM's post-processing, done with OpenCV on float32:

1. bilinear upscale of the ``[4h, 4w]`` logits to the padded ``S x S`` input frame,
2. crop of the valid ``input_size`` region (the resized image without its padding),
3. bilinear resize to the ``original_size`` of the image,
4. threshold (``> mask_threshold``) unless logits are asked for.

``cv2.resize(..., INTER_LINEAR)`` on float32 uses half-pixel centres and clamped edges with
two taps per axis, i.e. the semantics of ``torch.nn.functional.interpolate(mode="bilinear",
align_corners=False)`` (no antialiasing) that the official predictor uses.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["postprocess_masks", "select_masks", "upscale_logits"]

_GROUP = 4  # channels per cv2.resize call (see _resize_stack)
_CHUNK_BYTES = 64 << 20  # bound on the float32 image-sized temporaries per step


def select_masks(
    iou_predictions: np.ndarray, low_res_masks: np.ndarray, multimask_output: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Keep the mask tokens a caller asked for.

    Args:
        iou_predictions: ``[B, T]`` scores of all ``T`` mask tokens (T = 4 for SAM).
        low_res_masks: ``[B, T, 4h, 4w]`` logits.
        multimask_output: True -> tokens ``1..T-1`` (three masks), False -> token 0.

    Returns:
        ``(scores [B, C], low_res [B, C, 4h, 4w])`` with ``C = T - 1`` or 1.
    """
    if iou_predictions.ndim != 2 or low_res_masks.ndim != 4:
        raise ValueError(
            f"expected iou [B, T] and masks [B, T, h, w], got {iou_predictions.shape} and {low_res_masks.shape}"
        )
    if iou_predictions.shape != low_res_masks.shape[:2]:
        raise ValueError(f"iou {iou_predictions.shape} and masks {low_res_masks.shape} disagree on [B, T]")
    tokens = slice(1, None) if multimask_output else slice(0, 1)
    return iou_predictions[:, tokens], low_res_masks[:, tokens]


def _resize_stack(stack: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of ``[h, w, K]`` float32 (any K) to ``[H, W, K]``.

    OpenCV's float kernels round differently depending on the channel count, so masks are
    always resized in groups of exactly four channels (the last group zero padded): a mask's
    result then does not depend on how many other masks are resized with it, and
    ``predict_batch`` gives bit-identical results to a loop of ``predict``.
    """
    out_h, out_w = size_hw
    h, w, k = stack.shape
    if (h, w) == (out_h, out_w):
        return stack
    out = np.empty((out_h, out_w, k), dtype=np.float32)
    for start in range(0, k, _GROUP):
        part = stack[:, :, start : start + _GROUP]
        n = part.shape[2]
        if n < _GROUP:
            part = np.concatenate([part, np.zeros((h, w, _GROUP - n), np.float32)], axis=2)
        resized = cv2.resize(np.ascontiguousarray(part), (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        out[:, :, start : start + n] = resized[:, :, :n]
    return out


def upscale_logits(
    low_res: np.ndarray,
    *,
    image_size: int,
    input_size: tuple[int, int],
    original_size: tuple[int, int],
) -> np.ndarray:
    """Image-sized logits from low-resolution ones (steps 1-3 above).

    Args:
        low_res: float32 ``[K, 4h, 4w]``.
        image_size: side ``S`` of the padded model input.
        input_size: ``(h, w)`` of the resized image inside the ``S x S`` frame.
        original_size: ``(H, W)`` of the original image.

    Returns:
        float32 ``[K, H, W]``.
    """
    if low_res.ndim != 3:
        raise ValueError(f"expected [K, h, w] logits, got shape {low_res.shape}")
    in_h, in_w = input_size
    stack = np.ascontiguousarray(low_res.transpose(1, 2, 0), dtype=np.float32)
    padded = _resize_stack(stack, (image_size, image_size))
    cropped = padded[:in_h, :in_w]
    full = _resize_stack(np.ascontiguousarray(cropped), tuple(original_size))
    return np.ascontiguousarray(full.transpose(2, 0, 1))


def postprocess_masks(
    low_res: np.ndarray,
    *,
    image_size: int,
    input_size: tuple[int, int],
    original_size: tuple[int, int],
    mask_threshold: float = 0.0,
    return_logits: bool = False,
) -> np.ndarray:
    """Masks ``[..., H, W]`` for low-resolution logits ``[..., 4h, 4w]``.

    Returns float32 logits when ``return_logits``, else bool ``logits > mask_threshold``.
    Work is done in chunks so that large prompt batches on large images never hold more
    than a bounded amount of float32 image-sized temporaries.
    """
    lead = low_res.shape[:-2]
    flat = low_res.reshape(-1, *low_res.shape[-2:])
    height, width = original_size
    out = np.empty((flat.shape[0], height, width), dtype=np.float32 if return_logits else bool)
    per_mask = 4 * max(height * width, image_size * image_size)
    step = max(1, _CHUNK_BYTES // per_mask)
    for start in range(0, flat.shape[0], step):
        logits = upscale_logits(
            flat[start : start + step],
            image_size=image_size,
            input_size=input_size,
            original_size=original_size,
        )
        if return_logits:
            out[start : start + step] = logits
        else:
            np.greater(logits, mask_threshold, out=out[start : start + step])
    return out.reshape(*lead, height, width)
