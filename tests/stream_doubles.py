"""Deterministic numpy backends and synthetic videos for the streaming tests.

``ColourBackend`` is a tiny "model" that really looks at the image: it segments the region
whose colour matches a reference colour taken from the prompt, clipped to the prompt box.
So a tracker only keeps the object if it moves its prompts along with it -- unlike
``predictor_doubles.BoxBackend``, whose masks ignore the image.

* ``encode`` average-pools the normalised input to ``S/4`` and stores each 4x4 block of that
  grid in 48 channels (space-to-depth), giving ``[1, 48, S/16, S/16]``;
* ``decode`` rebuilds the ``S/4`` colour grid; the reference colour is the mean colour where
  ``mask_input > 0`` (if given), else the colour under the first foreground click, else at the
  box centre. Logits are ``4 * (1 - colour distance)`` (normalised units), limited inside the
  box by the signed distance to it (low-res pixels). Tokens are shifted by ``t - 1``; IoU
  scores favour token 0, then 1.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from edgesam.metrics import mask_iou


class ColourBackend:
    name = "colour-test"

    def __init__(self, *, image_size: int = 128, encode_delay: float = 0.0) -> None:
        self.image_size = image_size
        self.pixel_mean = np.array([123.675, 116.28, 103.53], dtype=np.float32)
        self.pixel_std = np.array([58.395, 57.12, 57.375], dtype=np.float32)
        self.mask_threshold = 0.0
        self.encode_delay = encode_delay
        self.encode_calls = 0
        self.fail_on_encode: int | None = None  # raise on this encode call (0-based)
        self._lock = threading.Lock()

    def encode(self, image: np.ndarray) -> np.ndarray:
        s = self.image_size
        assert image.shape == (1, 3, s, s) and image.dtype == np.float32
        with self._lock:
            call = self.encode_calls
            self.encode_calls += 1
        if self.fail_on_encode is not None and call >= self.fail_on_encode:
            raise RuntimeError(f"encoder failure on call {call}")
        if self.encode_delay:
            time.sleep(self.encode_delay)
        q = s // 4
        low = image[0].reshape(3, q, 4, q, 4).mean(axis=(2, 4))  # [3, S/4, S/4]
        g = s // 16
        blocks = low.reshape(3, g, 4, g, 4).transpose(0, 2, 4, 1, 3).reshape(48, g, g)
        return blocks[None].astype(np.float32)

    @staticmethod
    def _colours(embedding: np.ndarray) -> np.ndarray:
        """``[S/4, S/4, 3]`` colour grid from the ``[1, 48, g, g]`` embedding."""
        g = embedding.shape[-1]
        return embedding[0].reshape(3, 4, 4, g, g).transpose(3, 1, 4, 2, 0).reshape(4 * g, 4 * g, 3)

    def decode(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input):
        colours = self._colours(image_embeddings)
        q = colours.shape[0]
        cell = self.image_size / q
        yy, xx = np.mgrid[0:q, 0:q].astype(np.float64)
        b = point_labels.shape[0]
        base = np.empty((b, q, q), dtype=np.float64)
        for i in range(b):
            labels, coords = point_labels[i], point_coords[i].astype(np.float64) / cell - 0.5
            box = None
            if (labels == 2).any() and (labels == 3).any():
                box = np.concatenate([coords[labels == 2][0], coords[labels == 3][0]])
            if has_mask_input[i] > 0 and (mask_input[i, 0] > 0).any():
                ref = colours[mask_input[i, 0] > 0].mean(axis=0)
            elif (labels == 1).any():
                x, y = np.clip(np.round(coords[labels == 1][0]), 0, q - 1).astype(int)
                ref = colours[y, x]
            elif box is not None:
                x, y = np.clip(np.round((box[:2] + box[2:]) / 2), 0, q - 1).astype(int)
                ref = colours[y, x]
            else:
                base[i] = -10.0
                continue
            logit = 4.0 * (1.0 - np.abs(colours - ref).max(axis=-1))
            if box is not None:
                inside = np.minimum.reduce([xx - box[0], box[2] - xx, yy - box[1], box[3] - yy]) + 0.5
                logit = np.minimum(logit, 4.0 * inside)
            base[i] = logit
        shifts = np.arange(4, dtype=np.float64) - 1.0
        low_res = (base[:, None] + shifts[None, :, None, None]).astype(np.float32)
        iou = np.tile(np.array([0.9, 0.8, 0.7, 0.6], np.float32), (b, 1))
        return iou, low_res


def disc_frame(t: int, *, height: int = 96, width: int = 128, radius: float = 14.0,
               start: tuple[float, float] = (28.0, 40.0), step: tuple[float, float] = (3.0, 1.5),
               ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Frame ``t`` of a red disc moving by ``step`` pixels a frame over a colour gradient.

    Returns:
        ``uint8 [H, W, 3]`` RGB frame and the disc's ``bool [H, W]`` mask.
    """
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.stack(
        [40 + xx * 120 // width, 60 + yy * 120 // height, np.full_like(xx, 150)], axis=-1
    ).astype(np.uint8)
    cx, cy = start[0] + step[0] * t, start[1] + step[1] * t
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2
    image[disc] = (235, 30, 30)
    return image, disc


def disc_video(n: int, **kwargs: float) -> tuple[np.ndarray, np.ndarray]:
    """``n`` frames of :func:`disc_frame`: ``uint8 [n, H, W, 3]`` and ``bool [n, H, W]`` masks."""
    frames, masks = zip(*(disc_frame(t, **kwargs) for t in range(n)))
    return np.stack(frames), np.stack(masks)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks of one shape (1.0 for two empty masks)."""
    return float(mask_iou(a, b))
