"""The package's own calibration images, used when no ``--calib`` folder is given.

Scenes come from :func:`edgesam.distillation.synthetic.generate_scene` (textured shapes on
textured backgrounds) when that module can be imported (it needs the training extras);
otherwise from :func:`procedural_image`, a small numpy + OpenCV generator with the same
ingredients: smooth colour gradients, filled and outlined shapes, texture and sensor noise.
Both are deterministic functions of the seed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["procedural_image", "sample_images"]


def procedural_image(seed: int, height: int, width: int) -> np.ndarray:
    """A deterministic scene: ``uint8 [height, width, 3]`` RGB."""
    import cv2

    if height < 8 or width < 8:
        raise ValueError(f"sample images must be at least 8x8, got {height}x{width}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5A4D]))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    c0, c1 = rng.uniform(0, 255, (2, 3)).astype(np.float32)
    angle = rng.uniform(0, np.pi)
    t = (np.cos(angle) * xx / width + np.sin(angle) * yy / height + 1.0) / 2.0
    image = c0 * (1 - t[..., None]) + c1 * t[..., None]
    side = min(height, width)
    for _ in range(int(rng.integers(4, 10))):
        colour = tuple(float(v) for v in rng.uniform(0, 255, 3))
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        size = int(rng.uniform(0.05, 0.3) * side) + 1
        thickness = -1 if rng.random() < 0.8 else max(1, size // 8)
        kind = int(rng.integers(0, 3))
        if kind == 0:
            axes = (size, int(size * rng.uniform(0.4, 1.0)) + 1)
            cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), 0, 360, colour, thickness)
        elif kind == 1:
            cv2.rectangle(image, (centre[0] - size, centre[1] - size // 2), (centre[0] + size, centre[1] + size // 2),
                          colour, thickness)  # fmt: skip
        else:
            pts = rng.normal(0, size, (int(rng.integers(3, 7)), 2)) + np.array(centre)
            cv2.fillPoly(image, [pts.astype(np.int32)], colour)
    stripes = 12.0 * np.sin(xx * rng.uniform(0.05, 0.3)) * np.sin(yy * rng.uniform(0.05, 0.3))
    image = image + stripes[..., None] + rng.normal(0, 4.0, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _scene(seed: int, height: int, width: int) -> np.ndarray | None:
    """A synthetic scene from the distillation generator, or None if it cannot be imported."""
    try:
        from edgesam.distillation.synthetic import SceneConfig, generate_scene
    except ImportError:
        return None
    config = SceneConfig(height=height, width=width, min_objects=3, max_objects=8)
    return generate_scene(int(seed), config).image


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
        image = _scene(seed + i, h, w)
        images.append(image if image is not None else procedural_image(seed + i, h, w))
    return images
