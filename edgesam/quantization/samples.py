"""The package's own calibration images, used when no ``--calib`` folder is given.

Scenes come from :func:`edgesam.scenes.generate_scene` (textured shapes on textured
backgrounds; numpy + OpenCV, so also in runtime-only installs), a deterministic function of
the seed.
"""

from __future__ import annotations

import numpy as np

from edgesam.scenes import SceneConfig, generate_scene

__all__ = ["sample_images"]


def sample_images(count: int, *, long_side: int = 512, seed: int = 0) -> list[np.ndarray]:
    """``count`` sample images ``uint8 [H, W, 3]``, alternating landscape/portrait 4:3 frames.

    Args:
        count: number of images (>= 1).
        long_side: the longer side in pixels (the predictor resizes to the model size).
        seed: first seed; image ``i`` uses ``seed + i``.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if long_side < 16:
        raise ValueError(f"long_side must be >= 16, got {long_side}")
    short = max(16, long_side * 3 // 4)
    images: list[np.ndarray] = []
    for i in range(count):
        h, w = (short, long_side) if i % 2 == 0 else (long_side, short)
        config = SceneConfig(height=h, width=w, min_objects=3, max_objects=8)
        images.append(generate_scene(seed + i, config).image)
    return images
