"""The fixed inputs a benchmark run times and compares: a sample scene and its prompts.

Everything is rendered at run time by :mod:`edgesam.scenes` from fixed seeds,
so every run and every machine sees the same pixels and prompts without shipping images.
Numpy + OpenCV only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgesam.scenes import SceneConfig, generate_scene
from edgesam.prompt_geometry import click_inside

__all__ = ["Prompts", "Workload", "make_workload", "object_prompts", "scene_config", "visible_point"]

#: Seed of the timed sample scene; fidelity scenes use the following seeds.
SAMPLE_SEED = 7
BOX_BATCH = 16


def scene_config(height: int, width: int) -> SceneConfig:
    """The scene distribution used by the benchmark (large shapes, as the demo model was trained on)."""
    return SceneConfig(height=height, width=width, min_objects=3, max_objects=6, min_size=0.12,
                       max_size=0.3, min_visible_area=max(48, height * width // 400))


def visible_point(mask: np.ndarray) -> tuple[float, float]:
    """A click well inside the mask: :func:`edgesam.fidelity.click_inside`."""
    return click_inside(mask)


@dataclass(frozen=True)
class Prompts:
    """Point and box prompts on one image, one per object.

    Attributes:
        image: uint8 ``[H, W, 3]`` RGB.
        points: float32 ``[K, 1, 2]`` one foreground click per object (x, y).
        labels: int64 ``[K, 1]`` all ones.
        boxes: float32 ``[K, 4]`` XYXY object boxes.
    """

    image: np.ndarray
    points: np.ndarray
    labels: np.ndarray
    boxes: np.ndarray


def object_prompts(seed: int, height: int, width: int) -> Prompts:
    """The scene for ``seed`` with a click inside and the box of each visible object."""
    scene = generate_scene(seed, scene_config(height, width))
    if len(scene.masks) == 0:
        raise RuntimeError(f"synthetic scene {seed} has no objects")
    points = np.array([[visible_point(m)] for m in scene.masks], dtype=np.float32)
    return Prompts(image=scene.image, points=points,
                   labels=np.ones(points.shape[:2], dtype=np.int64),
                   boxes=np.asarray(scene.boxes, dtype=np.float32))


@dataclass(frozen=True)
class Workload:
    """Inputs of the timed cases plus the images the fidelity figures are computed on.

    Attributes:
        image: uint8 ``[H, W, 3]`` the timed sample scene.
        point: float32 ``[1, 2]`` click on the sample's largest object; ``point_label`` int64 ``[1]``.
        box: float32 ``[4]`` that object's box.
        boxes: float32 ``[16, 4]`` a detector-like batch: every object box, repeated with a
            few pixels of deterministic jitter up to 16.
        fidelity: scenes with per-object prompts (the sample first).
    """

    image: np.ndarray
    point: np.ndarray
    point_label: np.ndarray
    box: np.ndarray
    boxes: np.ndarray
    fidelity: tuple[Prompts, ...]

    @property
    def size_label(self) -> str:
        """``"640x480"`` (width x height)."""
        return f"{self.image.shape[1]}x{self.image.shape[0]}"


def make_workload(*, height: int = 480, width: int = 640, fidelity_images: int = 3) -> Workload:
    """Render the sample scene and `fidelity_images` scenes (>= 1; the sample is the first)."""
    if fidelity_images < 1:
        raise ValueError(f"fidelity_images must be >= 1, got {fidelity_images}")
    scenes = tuple(object_prompts(SAMPLE_SEED + i, height, width) for i in range(fidelity_images))
    sample = scenes[0]
    areas = [float((b[2] - b[0]) * (b[3] - b[1])) for b in sample.boxes]
    big = int(np.argmax(areas))
    rng = np.random.default_rng(SAMPLE_SEED)
    reps = -(-BOX_BATCH // len(sample.boxes))
    boxes = np.tile(sample.boxes, (reps, 1))[:BOX_BATCH]
    jitter = rng.uniform(-3, 3, size=boxes.shape).astype(np.float32)
    jitter[: len(sample.boxes)] = 0
    boxes = np.clip(boxes + jitter, 0, [width - 1, height - 1, width - 1, height - 1])
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    return Workload(image=sample.image, point=sample.points[big].copy(),
                    point_label=np.ones(1, dtype=np.int64), box=sample.boxes[big].copy(),
                    boxes=boxes.astype(np.float32), fidelity=scenes)
