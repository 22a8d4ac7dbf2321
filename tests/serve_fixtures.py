"""Shared pieces of the ``edgesam serve`` tests: the embedded demo model and a sample scene."""

from __future__ import annotations

import functools

import cv2
import numpy as np


@functools.lru_cache(maxsize=1)
def demo_model():
    """The embedded ``edgesam-demo`` torch model (loaded once per test process)."""
    import torch

    from edgesam.models.checkpoints import load_model

    torch.set_num_threads(1)
    return load_model("edgesam-demo")


@functools.lru_cache(maxsize=4)
def scene(seed: int = 3, height: int = 192, width: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(image uint8 [H, W, 3], masks bool [K, H, W])``: a synthetic scene like the demo model's training data."""
    from edgesam.bench.workload import scene_config
    from edgesam.distillation.synthetic import generate_scene

    s = generate_scene(seed, scene_config(height, width))
    return s.image, s.masks


def largest_object(masks: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """The largest object's mask and its interior point farthest from its border, ``(x, y)``."""
    from edgesam.bench.workload import visible_point

    mask = masks[int(np.argmax(masks.sum(axis=(1, 2))))]
    x, y = visible_point(mask)
    return mask, (float(x), float(y))


def png_bytes(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()
