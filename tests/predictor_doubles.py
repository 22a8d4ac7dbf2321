"""A deterministic numpy implementation of edgesam's Backend protocol, for predictor tests.

``BoxBackend`` is a tiny geometric "model" with known answers:

* ``encode`` average-pools the normalised input onto the ``S/16`` grid (so embeddings depend
  on the image, and mix-ups between images are visible);
* ``decode`` returns, per query, low-resolution logits that are the signed distance (in
  input-frame pixels) to the box given by the points labelled 2/3, or ``radius - distance``
  to the nearest positive click when there is no box; ``mask_input`` is added where
  ``has_mask_input`` is set. Token ``t`` is shifted by ``t - 1`` pixels, so the four tokens
  differ, and IoU scores encode the embedding mean, the token and the query's coordinates.
"""

from __future__ import annotations

import numpy as np


class BoxBackend:
    name = "box-test"

    def __init__(self, *, image_size: int = 256, channels: int = 8, radius: float = 12.0) -> None:
        self.image_size = image_size
        self.pixel_mean = np.array([123.675, 116.28, 103.53], dtype=np.float32)
        self.pixel_std = np.array([58.395, 57.12, 57.375], dtype=np.float32)
        self.mask_threshold = 0.0
        self.channels = channels
        self.radius = radius
        self.decode_calls = 0

    def encode(self, image: np.ndarray) -> np.ndarray:
        s = self.image_size
        assert image.shape == (1, 3, s, s) and image.dtype == np.float32
        g = s // 16
        pooled = image[0].reshape(3, g, 16, g, 16).mean(axis=(2, 4))  # [3, g, g]
        reps = -(-self.channels // 3)
        return np.tile(pooled, (reps, 1, 1))[None, : self.channels].astype(np.float32)

    def decode(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input):
        self.decode_calls += 1
        b, _ = point_labels.shape
        _, _, h, w = image_embeddings.shape
        mh, mw = 4 * h, 4 * w
        assert point_coords.shape[:2] == point_labels.shape and point_coords.shape[2] == 2
        assert mask_input.shape == (b, 1, mh, mw) and has_mask_input.shape == (b,)
        # centres of the low-res pixels, in input-frame pixels
        cy = (np.arange(mh) + 0.5) * (self.image_size / mh)
        cx = (np.arange(mw) + 0.5) * (self.image_size / mw)
        yy, xx = np.meshgrid(cy, cx, indexing="ij")
        base = np.empty((b, mh, mw), dtype=np.float64)
        for i in range(b):
            labels, coords = point_labels[i], point_coords[i].astype(np.float64)
            if (labels == 2).any() and (labels == 3).any():
                x0, y0 = coords[labels == 2][0]
                x1, y1 = coords[labels == 3][0]
                base[i] = np.minimum.reduce([xx - x0, x1 - xx, yy - y0, y1 - yy])
            elif (labels == 1).any():
                pts = coords[labels == 1]
                dist = np.sqrt((xx[..., None] - pts[:, 0]) ** 2 + (yy[..., None] - pts[:, 1]) ** 2)
                base[i] = self.radius - dist.min(axis=-1)
            else:
                base[i] = -10.0
            base[i] += has_mask_input[i] * mask_input[i, 0]
        shifts = np.arange(4, dtype=np.float64) - 1.0
        low_res = (base[:, None] + shifts[None, :, None, None]).astype(np.float32)
        mean = float(image_embeddings.mean())
        per_query = 1e-4 * point_coords.astype(np.float64).sum(axis=(1, 2))
        iou = mean + 0.1 * np.arange(4)[None, :] + per_query[:, None]
        return iou.astype(np.float32), low_res
