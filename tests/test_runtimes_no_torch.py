"""The runtime path (bundle -> backend -> SamPredictor) works with torch made unimportable.

A subprocess installs a ``sys.meta_path`` finder that refuses ``torch`` and every submodule,
then loads a bundle exported here, runs the predictor end to end and checks the bundle's
golden reference. (``.ci/no_torch_check.sh`` does the same in a fresh virtualenv with
``pip install ".[onnxruntime]"``, where torch is not installed at all.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from torch_blocker import BLOCK_TORCH  # noqa: E402

from edgesam.runtimes import available_backends  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

SCRIPT = BLOCK_TORCH + r"""
try:
    import torch  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("torch import was not blocked")

import numpy as np
import edgesam
from edgesam import SamPredictor
from edgesam.runtimes.golden import check_golden

bundle, backend = sys.argv[1], sys.argv[2]
options = {"precision": "fp32", "cache_dir": None} if backend == "openvino" else {}  # the shared bundle stays as it is
predictor = SamPredictor.from_bundle(bundle, backend=backend, **options)
image = np.zeros((120, 200, 3), np.uint8)
image[30:90, 50:150] = (220, 40, 40)
predictor.set_image(image)
masks, scores, low = predictor.predict(point_coords=np.array([[100, 60]]), point_labels=np.array([1]))
assert masks.shape == (3, 120, 200) and masks.dtype == bool and scores.shape == (3,), (masks.shape, scores.shape)
masks, scores, low = predictor.predict_batch(boxes=np.array([[50, 30, 149, 89], [0, 0, 60, 60]]))
assert masks.shape == (2, 3, 120, 200)
result = check_golden(predictor.backend, min_mask_iou=0.995)
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
assert not loaded, loaded
print(f"OK {backend} mask_iou={result.mask_iou:.4f}")
"""


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_bundle_runs_without_torch(vit_t_bundle: Path, tmp_path_factory: pytest.TempPathFactory, backend: str) -> None:
    if available_backends()[backend] is not True:
        pytest.skip(f"{backend}: {available_backends()[backend]}")
    bundle = vit_t_bundle
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(bundle), backend],
        cwd=tmp_path_factory.getbasetemp(), env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"OK {backend}" in proc.stdout


IMPORT_SCRIPT = r"""
import importlib, sys

modules = sys.argv[1:]
for name in modules:
    importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
assert not loaded, loaded
print("IMPORTED", len(modules))
"""

RUNTIME_PATH = (
    "edgesam", "edgesam.bundle", "edgesam.bundle.catalogue", "edgesam.bundle.golden", "edgesam.predictor",
    "edgesam.runtimes", "edgesam.runtimes.loader", "edgesam.runtimes.golden", "edgesam.runtimes.precision",
    "edgesam.runtimes.onnxruntime_backend", "edgesam.runtimes.openvino_backend",
    "edgesam.runtimes.tensorrt_backend", "edgesam.runtimes.torch_backend", "edgesam.fidelity", "edgesam.scenes",
    "edgesam.prompt_geometry", "edgesam.export.bundle", "edgesam.zoo",
)  # fmt: skip


@pytest.mark.parametrize("blocked", [False, True], ids=["torch-installed", "torch-blocked"])
def test_runtime_path_imports_no_torch(blocked: bool) -> None:
    """Importing the runtime path (bundle layer, predictor, every backend module) loads no torch,
    whether torch is installed (nothing pulls it in) or not (nothing needs it)."""
    script = (BLOCK_TORCH if blocked else "") + IMPORT_SCRIPT
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", script, *RUNTIME_PATH], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"IMPORTED {len(RUNTIME_PATH)}" in proc.stdout
