"""Deterministic synthetic videos: one textured shape moving, rotating and partly occluded.

Used to measure tracking (``benchmarks/demo_model_paths.py``, tests). A video is a pure
function of ``(seed, VideoConfig)``: a textured shape (star, polygon, rectangle or ellipse)
bounces around a textured background at constant speed while it rotates; a second shape
(the occluder) crosses the frame on top of it. The ground truth is the target's visible mask
in every frame (exact: no anti-aliasing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..scenes import _smooth_noise, _texture

__all__ = ["VideoConfig", "Video", "generate_video"]

_KINDS = ("star", "polygon", "rectangle", "ellipse")


@dataclass(frozen=True)
class VideoConfig:
    """Parameters of the video distribution.

    Attributes:
        frames: number of frames.
        height, width: frame size in pixels (the demo model's scale is 128x96).
        radius: the target's radius as a fraction of ``min(height, width)``.
        speed: pixels per frame of the target's motion.
        spin: degrees per frame of the target's rotation.
        occluder: draw a second shape crossing over the target.
        noise: standard deviation of the per-pixel sensor noise of every frame.
    """

    frames: int = 40
    height: int = 96
    width: int = 128
    radius: float = 0.24
    speed: float = 1.5
    spin: float = 4.0
    occluder: bool = True
    noise: float = 3.0


@dataclass
class Video:
    """One generated video.

    Attributes:
        frames: uint8 ``[T, H, W, 3]`` RGB.
        masks: bool ``[T, H, W]``, the target's visible mask per frame.
        kind: the target's shape kind.
    """

    frames: np.ndarray
    masks: np.ndarray
    kind: str


def _local_shape(rng: np.random.Generator, kind: str, r: float) -> np.ndarray | tuple[float, float]:
    """Polygon vertices ``[n, 2]`` around the origin, or ellipse semi-axes."""
    if kind == "ellipse":
        return (r, r * rng.uniform(0.5, 0.8))
    if kind == "rectangle":
        a, b = r, r * rng.uniform(0.45, 0.8)
        return np.array([[-a, -b], [a, -b], [a, b], [-a, b]], np.float64)
    if kind == "polygon":
        n = int(rng.integers(4, 8))
        t = np.sort(rng.uniform(0, 2 * math.pi, n))
        return np.stack([r * rng.uniform(0.75, 1.0, n) * np.cos(t), r * rng.uniform(0.75, 1.0, n) * np.sin(t)], 1)
    n = int(rng.integers(5, 8))
    t = np.arange(2 * n) * math.pi / n
    rad = np.where(np.arange(2 * n) % 2 == 0, r, r * rng.uniform(0.5, 0.65))
    return np.stack([rad * np.cos(t), rad * np.sin(t)], 1)


def _draw(shape: np.ndarray | tuple[float, float], cx: float, cy: float, ang: float, h: int, w: int) -> np.ndarray:
    canvas = np.zeros((h, w), np.uint8)
    if isinstance(shape, tuple):
        axes = (max(int(shape[0]), 2), max(int(shape[1]), 2))
        cv2.ellipse(canvas, (int(round(cx)), int(round(cy))), axes, math.degrees(ang), 0, 360, 1, -1, cv2.LINE_8)
    else:
        rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
        pts = shape @ rot.T + np.array([cx, cy])
        cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 1, cv2.LINE_8)
    return canvas.astype(bool)


def generate_video(seed: int, config: VideoConfig | None = None) -> Video:
    """Generate the video for ``seed`` (same seed and config -> identical arrays)."""
    cfg = config or VideoConfig()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x71DE0]))
    h, w, t_n = cfg.height, cfg.width, cfg.frames
    background = _texture(rng, h, w) * (0.75 + 0.25 * _smooth_noise(rng, h, w, 4)[..., None])
    kind = _KINDS[int(rng.integers(0, len(_KINDS)))]
    r = cfg.radius * min(h, w)
    shape = _local_shape(rng, kind, r)
    target_tex = _texture(rng, h, w)
    occ_shape = _local_shape(rng, _KINDS[int(rng.integers(0, len(_KINDS)))], 0.6 * r)
    occ_tex = _texture(rng, h, w)

    pos = np.array([rng.uniform(r, w - r), rng.uniform(r, h - r)])
    heading = rng.uniform(0, 2 * math.pi)
    vel = cfg.speed * np.array([math.cos(heading), math.sin(heading)])
    ang, spin = rng.uniform(0, 2 * math.pi), math.radians(cfg.spin) * (1 if rng.random() < 0.5 else -1)
    # the occluder crosses the frame horizontally at the target's starting height, meeting it mid-video
    occ_y = pos[1] + rng.uniform(-0.5, 0.5) * r
    occ_x0, occ_x1 = (-r, w + r) if rng.random() < 0.5 else (w + r, -r)

    frames = np.zeros((t_n, h, w, 3), np.uint8)
    masks = np.zeros((t_n, h, w), bool)
    for t in range(t_n):
        drawn = _draw(shape, pos[0], pos[1], ang, h, w)
        image = background.copy()
        image[drawn] = target_tex[drawn]
        visible = drawn
        if cfg.occluder:
            f = t / max(t_n - 1, 1)
            occ = _draw(occ_shape, occ_x0 + (occ_x1 - occ_x0) * f, occ_y, -ang, h, w)
            image[occ] = occ_tex[occ]
            visible = drawn & ~occ
        if cfg.noise > 0:
            image = image + rng.normal(0, cfg.noise, size=image.shape).astype(np.float32)
        frames[t] = np.clip(np.round(image), 0, 255).astype(np.uint8)
        masks[t] = visible
        pos = pos + vel
        for i, hi in ((0, w), (1, h)):  # bounce off the borders, the shape staying inside
            if pos[i] < r or pos[i] > hi - r:
                vel[i] = -vel[i]
                pos[i] = min(max(pos[i], r), hi - r)
        ang += spin
    return Video(frames=frames, masks=masks, kind=kind)
