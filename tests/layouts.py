"""The official checkpoint layouts (``shared/checkpoint-layouts/<arch>.json``) for the tests.

The folder is looked up in ``$EDGESAM_LAYOUT_DIR``, else in the nearest folder above the
repository that holds ``shared/checkpoint-layouts`` (a checkout beside ``shared/``, or a work
tree nested one level deeper). Tests that need a layout skip, naming the folder, when it is absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[1]


def _find_layout_dir() -> Path:
    if os.environ.get("EDGESAM_LAYOUT_DIR"):
        return Path(os.environ["EDGESAM_LAYOUT_DIR"])
    for parent in _REPO.parents:
        candidate = parent / "shared" / "checkpoint-layouts"
        if candidate.is_dir():
            return candidate
    return _REPO.parent / "shared" / "checkpoint-layouts"


LAYOUT_DIR = _find_layout_dir()


def load_layout(arch: str) -> dict[str, tuple[list[int], str]]:
    """``{key: (shape, dtype)}`` of the official checkpoint of ``arch`` (skips if not available)."""
    path = LAYOUT_DIR / f"{arch}.json"
    if not path.is_file():
        pytest.skip(f"checkpoint layout {path} not found (set EDGESAM_LAYOUT_DIR or put shared/ beside the repo)")
    return json.loads(path.read_text())
