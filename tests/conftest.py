"""Shared fixtures: the session's exported bundle, small real-looking images, torch threads.

Helpers that test modules import live in plain modules beside this file (``layouts.py``,
``scene_images.py``, ``bundle_fixtures.py``); test modules never import ``conftest``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scene_images import make_scene_image


@pytest.fixture
def scene_image() -> np.ndarray:
    """See :func:`scene_images.make_scene_image`."""
    return make_scene_image()


@pytest.fixture(scope="session")
def vit_t_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's verified bundle of the seeded vit_t at 256 px (``bundle_fixtures.small_model``),
    with the SAM-official decoder; exported once. Do not modify it: copy it first (``copy_bundle``)."""
    pytest.importorskip("torch")
    from bundle_fixtures import small_bundle

    return small_bundle(tmp_path_factory)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch intra-op thread for a module: on a busy machine, torch's thread pool stalls
    waiting for descheduled workers."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
