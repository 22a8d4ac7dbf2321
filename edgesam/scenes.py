"""Deterministic synthetic scenes: textured shapes over textured backgrounds (the package's one scene generator).

Used for distillation data, export verification, calibration samples, the benchmark workload
and the demos. numpy + OpenCV only; imports nothing else of edgesam, so every layer may use it.

Every scene is a pure function of ``(seed, SceneConfig)``. Shapes are rasterised without
anti-aliasing, so the instance masks are exact: after occlusion (later shapes are drawn on
top of earlier ones) each pixel belongs to at most one instance, and the image outside the
union of the masks is exactly the background.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = ["SceneConfig", "Scene", "generate_scene", "SHAPE_KINDS"]

SHAPE_KINDS: tuple[str, ...] = ("ellipse", "rectangle", "polygon", "star", "ring")


@dataclass(frozen=True)
class SceneConfig:
    """Parameters of the scene distribution.

    Attributes:
        height, width: image size in pixels.
        min_objects, max_objects: number of shapes drawn (before tiny ones are dropped).
        min_size, max_size: shape radius as a fraction of ``min(height, width)``.
        min_visible_area: instances with fewer visible pixels are removed (not drawn).
        kinds: shape kinds to draw, a subset of ``SHAPE_KINDS``.
        noise: standard deviation of the per-pixel sensor noise added to the whole image.
    """

    height: int = 256
    width: int = 256
    min_objects: int = 2
    max_objects: int = 6
    min_size: float = 0.08
    max_size: float = 0.25
    min_visible_area: int = 64
    kinds: tuple[str, ...] = SHAPE_KINDS
    noise: float = 3.0

    def __post_init__(self) -> None:
        if self.height < 16 or self.width < 16:
            raise ValueError(f"scene size must be at least 16x16, got {self.height}x{self.width}")
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError("need 1 <= min_objects <= max_objects")
        if not 0 < self.min_size <= self.max_size:
            raise ValueError("need 0 < min_size <= max_size")
        unknown = set(self.kinds) - set(SHAPE_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"unknown shape kinds {sorted(unknown)}; choose from {SHAPE_KINDS}")


@dataclass
class Scene:
    """One generated scene.

    Attributes:
        image: uint8 [H, W, 3] RGB.
        masks: bool [K, H, W] visible (post-occlusion) instance masks, pairwise disjoint.
        boxes: float32 [K, 4] XYXY boxes of the visible masks, inclusive pixel coordinates
            (x1 = max column, y1 = max row), as in SAM's mask-to-box.
        kinds: the K shape kinds.
        visible_fraction: float32 [K] visible pixels / drawn pixels of each instance.
        background: uint8 [H, W, 3] the background alone (before shapes and noise).
    """

    image: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    kinds: list[str] = field(default_factory=list)
    visible_fraction: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    background: np.ndarray | None = None


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Value noise in [0, 1]: a random ``cells x cells`` grid upsampled bicubically. [H, W]."""
    grid = rng.random((cells, cells), dtype=np.float32)
    out = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    lo, hi = float(out.min()), float(out.max())
    return (out - lo) / max(hi - lo, 1e-6)


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A random float32 [H, W, 3] texture in 0..255: flat, gradient, noise, stripes or checker."""
    c0 = rng.uniform(0, 255, size=3).astype(np.float32)
    c1 = rng.uniform(0, 255, size=3).astype(np.float32)
    style = rng.integers(0, 5)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if style == 0:  # flat colour
        t = np.zeros((h, w), np.float32)
    elif style == 1:  # linear gradient along a random direction
        ang = rng.uniform(0, 2 * math.pi)
        proj = xx * math.cos(ang) + yy * math.sin(ang)
        t = (proj - proj.min()) / max(float(np.ptp(proj)), 1e-6)
    elif style == 2:  # smooth value noise
        t = _smooth_noise(rng, h, w, int(rng.integers(3, 9)))
    elif style == 3:  # stripes
        ang = rng.uniform(0, math.pi)
        period = rng.uniform(6, 24)
        proj = xx * math.cos(ang) + yy * math.sin(ang)
        t = 0.5 + 0.5 * np.sin(2 * math.pi * proj / period)
    else:  # checkerboard
        cell = int(rng.integers(6, 24))
        t = (((xx // cell) + (yy // cell)) % 2).astype(np.float32)
    amount = rng.uniform(0.2, 0.8) if style else 0.0
    t = t[..., None] * amount
    return c0 * (1 - t) + c1 * t


def _shape_mask(rng: np.random.Generator, kind: str, h: int, w: int, cfg: SceneConfig) -> np.ndarray:
    """Rasterise one random shape of ``kind`` into a bool [H, W] mask (no anti-aliasing)."""
    canvas = np.zeros((h, w), np.uint8)
    side = min(h, w)
    r = rng.uniform(cfg.min_size, cfg.max_size) * side
    cx = rng.uniform(0.1, 0.9) * w
    cy = rng.uniform(0.1, 0.9) * h
    ang = rng.uniform(0, 2 * math.pi)
    if kind == "ellipse" or kind == "ring":
        axes = (max(int(r), 2), max(int(r * rng.uniform(0.4, 1.0)), 2))
        cv2.ellipse(canvas, (int(cx), int(cy)), axes, math.degrees(ang), 0, 360, 1, -1, cv2.LINE_8)
        if kind == "ring":
            inner = (max(int(axes[0] * 0.5), 1), max(int(axes[1] * 0.5), 1))
            cv2.ellipse(canvas, (int(cx), int(cy)), inner, math.degrees(ang), 0, 360, 0, -1, cv2.LINE_8)
    else:
        if kind == "rectangle":
            a, b = r, r * rng.uniform(0.3, 1.0)
            local = np.array([[-a, -b], [a, -b], [a, b], [-a, b]], np.float64)
        elif kind == "polygon":
            n = int(rng.integers(3, 8))
            t = np.sort(rng.uniform(0, 2 * math.pi, n))
            rad = r * rng.uniform(0.6, 1.0, n)
            local = np.stack([rad * np.cos(t), rad * np.sin(t)], 1)
        else:  # star
            n = int(rng.integers(4, 8))
            t = np.arange(2 * n) * math.pi / n
            rad = np.where(np.arange(2 * n) % 2 == 0, r, r * rng.uniform(0.35, 0.6))
            local = np.stack([rad * np.cos(t), rad * np.sin(t)], 1)
        rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
        pts = local @ rot.T + np.array([cx, cy])
        cv2.fillPoly(canvas, [np.round(pts).astype(np.int32)], 1, cv2.LINE_8)
    return canvas.astype(bool)


def _mask_to_box(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float32)


def generate_scene(seed: int, config: SceneConfig | None = None) -> Scene:
    """Generate the scene for ``seed`` (same seed and config -> identical arrays).

    Returns:
        ``Scene`` with image uint8 [H,W,3], masks bool [K,H,W] (K >= 1 unless every shape
        was too small), boxes float32 [K,4] XYXY inclusive.
    """
    cfg = config or SceneConfig()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED]))
    h, w = cfg.height, cfg.width
    background = _texture(rng, h, w)
    # Background modulation with low-frequency noise makes "flat" backgrounds less trivial.
    background *= 0.75 + 0.25 * _smooth_noise(rng, h, w, 4)[..., None]

    n = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    kinds = [cfg.kinds[int(i)] for i in rng.integers(0, len(cfg.kinds), n)]
    drawn = [_shape_mask(rng, k, h, w, cfg) for k in kinds]
    textures = [_texture(rng, h, w) for _ in kinds]

    # Drop instances whose visible part is too small; repeat because dropping one uncovers others.
    keep = [i for i in range(n) if drawn[i].sum() >= cfg.min_visible_area]
    while True:
        visible = _visible_masks([drawn[i] for i in keep])
        small = [j for j, m in enumerate(visible) if m.sum() < cfg.min_visible_area]
        if not small:
            break
        keep.pop(min(small, key=lambda j: visible[j].sum()))

    image = background.copy()
    for i in keep:
        image[drawn[i]] = textures[i][drawn[i]]
    if cfg.noise > 0:
        image += rng.normal(0, cfg.noise, size=image.shape).astype(np.float32)
    image_u8 = np.clip(np.round(image), 0, 255).astype(np.uint8)

    if keep:
        masks = np.stack(visible, 0)
        boxes = np.stack([_mask_to_box(m) for m in masks], 0)
        frac = np.array([m.sum() / drawn[i].sum() for m, i in zip(masks, keep)], np.float32)
    else:
        masks = np.zeros((0, h, w), bool)
        boxes = np.zeros((0, 4), np.float32)
        frac = np.zeros(0, np.float32)
    return Scene(
        image=image_u8,
        masks=masks,
        boxes=boxes,
        kinds=[kinds[i] for i in keep],
        visible_fraction=frac,
        background=np.clip(np.round(background), 0, 255).astype(np.uint8),
    )


def _visible_masks(drawn: list[np.ndarray]) -> list[np.ndarray]:
    """Visible part of each mask when later masks are painted over earlier ones."""
    out: list[np.ndarray] = []
    covered: np.ndarray | None = None
    for m in reversed(drawn):
        vis = m if covered is None else (m & ~covered)
        covered = m.copy() if covered is None else (covered | m)
        out.append(vis)
    return out[::-1]
