"""Small exported bundles shared by the export and runtime tests (built once per session).

``small_model()`` is a deterministic vit_t (TinyViT-5M) SAM at 256 px with seeded random
weights; ``small_bundle(factory)`` is its verified bundle, with the SAM-official decoder.
Tests must not modify the shared bundle: copy it first (``copy_bundle``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgesam import metrics

SIZE = 256
_BUNDLES: dict[str, Path] = {}


def small_model():
    """Fresh seeded vit_t model at 256 px (eval mode)."""
    torch = pytest.importorskip("torch")
    from edgesam.models import build_sam

    torch.manual_seed(0)
    return build_sam("vit_t", image_size=SIZE).eval()


def tiny_model():
    """A seeded two-layer SAM-ViT model at 128 px: the fastest real model to export."""
    torch = pytest.importorskip("torch")
    from edgesam.models import ModelSpec, build_sam

    spec = ModelSpec("test_tiny", "sam_vit", "tiny test model", image_size=128, decoder_depth=1,
                     decoder_mlp_dim=256, encoder_kwargs=dict(embed_dim=32, depth=1, num_heads=2, window_size=4))
    torch.manual_seed(0)
    return build_sam(spec).eval()


def small_bundle(factory: pytest.TempPathFactory) -> Path:
    """The shared bundle of :func:`small_model` (exported on first use)."""
    if "vit_t" not in _BUNDLES:
        from edgesam.export import export_bundle

        out = factory.mktemp("bundles") / "vit_t_256"
        _BUNDLES["vit_t"] = export_bundle(small_model(), out, sam_decoder=True)
    return _BUNDLES["vit_t"]


def copy_bundle(src: Path, dst: Path) -> Path:
    """A private copy of a bundle (without runtime caches) that a test may damage."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("*_cache"))
    return dst


def scene(seed: int = 3, height: int = 180, width: int = 240) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic RGB scene ``uint8 [H, W, 3]`` and its instance boxes ``float32 [K, 4]``."""
    from edgesam.scenes import SceneConfig, generate_scene

    sc = generate_scene(seed, SceneConfig(height=height, width=width, min_objects=3, max_objects=4))
    return sc.image, sc.boxes


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Mean IoU over the leading axes of two boolean mask stacks (1.0 where both are empty)."""
    return float(metrics.mask_iou(a, b).mean())
