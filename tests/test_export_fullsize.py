"""Full-size (1024 px) vit_t: export, verify, run through SamPredictor on ONNX Runtime, compare
with torch. Marked ``slow`` (deselect with ``-m "not slow"``); runs by default."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from bundle_fixtures import mask_iou, scene  # noqa: E402

from edgesam.export import export_bundle, load_bundle  # noqa: E402
from edgesam.models import build_sam  # noqa: E402
from edgesam.predictor import SamPredictor  # noqa: E402


@pytest.mark.slow
def test_vit_t_1024_export_and_run(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_sam("vit_t")
    assert model.image_size == 1024
    bundle = export_bundle(model, tmp_path / "vit_t_1024")
    meta = load_bundle(bundle).metadata
    assert meta["image_size"] == 1024 and meta["arch"] == "vit_t"
    assert meta["verification"]["measured"]["end_to_end_mask_iou"] >= 0.99

    image, boxes = scene(seed=21, height=480, width=640)
    ours = SamPredictor.from_bundle(bundle, backend="onnxruntime")
    ref = SamPredictor(model)
    for p in (ours, ref):
        p.set_image(image)
    np.testing.assert_allclose(ours.get_image_embedding(), ref.get_image_embedding(), atol=1e-3)
    a = ours.predict_batch(boxes=boxes, multimask_output=True)
    b = ref.predict_batch(boxes=boxes, multimask_output=True)
    assert a[0].shape == (len(boxes), 3, 480, 640)
    assert mask_iou(a[0], b[0]) >= 0.995
    np.testing.assert_allclose(a[1], b[1], atol=1e-3)
