"""Shared fixtures: checkpoint layouts, small real-looking images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

LAYOUT_DIR = Path(__file__).resolve().parents[2] / "shared" / "checkpoint-layouts"


def load_layout(arch: str) -> dict[str, tuple[list[int], str]]:
    """``{key: (shape, dtype)}`` of the official checkpoint of ``arch``."""
    path = LAYOUT_DIR / f"{arch}.json"
    if not path.is_file():
        pytest.skip(f"checkpoint layouts not found at {LAYOUT_DIR}")
    return json.loads(path.read_text())


def make_scene_image() -> np.ndarray:
    """A 240x320 RGB uint8 image: a bright disc and a dark rectangle on a gradient."""
    h, w = 240, 320
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 90)], axis=-1).astype(np.uint8)
    img[(yy - 120) ** 2 + (xx - 90) ** 2 < 40**2] = (240, 230, 40)
    img[60:200, 190:290] = (20, 30, 160)
    return img


@pytest.fixture
def scene_image() -> np.ndarray:
    """See :func:`make_scene_image`."""
    return make_scene_image()


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch intra-op thread for a module: on a busy machine, torch's thread pool stalls
    waiting for descheduled workers."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
