"""The SAM-official decoder interface (decoder_sam.onnx) runs as SAM's tools call it and agrees
with edgesam's predictor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from bundle_fixtures import SIZE, mask_iou, scene, small_model  # noqa: E402

from edgesam.predictor import SamPredictor  # noqa: E402
from edgesam.predictor.transforms import apply_boxes, apply_coords  # noqa: E402


@pytest.fixture(scope="module")
def setup() -> tuple[SamPredictor, np.ndarray, np.ndarray]:
    image, boxes = scene(seed=8, height=150, width=260)
    predictor = SamPredictor(small_model())
    predictor.set_image(image)
    return predictor, image, boxes


def _run(vit_t_bundle: Path, embed: np.ndarray, coords: np.ndarray, labels: np.ndarray, hw: tuple[int, int]) -> list:
    session = ort.InferenceSession(str(vit_t_bundle / "decoder_sam.onnx"), providers=["CPUExecutionProvider"])
    grid = SIZE // 16
    feeds = {
        "image_embeddings": embed,
        "point_coords": coords[None].astype(np.float32),
        "point_labels": labels[None].astype(np.float32),
        "mask_input": np.zeros((1, 1, 4 * grid, 4 * grid), np.float32),
        "has_mask_input": np.zeros(1, np.float32),
        "orig_im_size": np.array(hw, dtype=np.float32),  # float32, as in SAM's interface
    }
    return session.run(None, feeds)


def test_single_click_returns_best_multimask(vit_t_bundle: Path, setup) -> None:
    predictor, image, boxes = setup
    hw = image.shape[:2]
    click = np.array([[(boxes[0, 0] + boxes[0, 2]) / 2, (boxes[0, 1] + boxes[0, 3]) / 2]])
    # SAM's web demo: click in input-frame coordinates plus the (0, 0, -1) padding point
    coords = np.concatenate([apply_coords(click, hw, SIZE), [[0.0, 0.0]]])
    masks, iou, low = _run(vit_t_bundle, predictor.get_image_embedding(), coords, np.array([1, -1]), hw)
    assert masks.shape == (1, 1, *hw) and iou.shape == (1, 1) and low.shape == (1, 1, 64, 64)
    ref_masks, ref_scores, ref_low = predictor.predict(
        point_coords=click, point_labels=np.array([1]), return_logits=True
    )
    best = int(np.argmax(ref_scores))
    assert iou[0, 0] == pytest.approx(ref_scores[best], abs=1e-4)
    np.testing.assert_allclose(low[0, 0], ref_low[best], atol=1e-3 * max(1.0, np.abs(ref_low).max()))
    assert mask_iou(masks[0, 0] > 0, ref_masks[best] > 0) >= 0.99


def test_box_and_click_returns_single_mask_token(vit_t_bundle: Path, setup) -> None:
    predictor, image, boxes = setup
    hw = image.shape[:2]
    box = boxes[1]
    click = np.array([[(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]])
    coords = np.concatenate([apply_coords(click, hw, SIZE), apply_boxes(box[None], hw, SIZE).reshape(2, 2)])
    masks, iou, _ = _run(vit_t_bundle, predictor.get_image_embedding(), coords, np.array([1, 2, 3]), hw)
    ref_masks, ref_scores, _ = predictor.predict(point_coords=click, point_labels=np.array([1]), box=box,
                                                 multimask_output=False, return_logits=True)  # fmt: skip
    assert iou[0, 0] == pytest.approx(ref_scores[0], abs=1e-4)
    assert mask_iou(masks[0, 0] > 0, ref_masks[0] > 0) >= 0.99


@pytest.mark.parametrize("hw", [(256, 256), (100, 256), (256, 31), (600, 800)])
def test_any_original_size(vit_t_bundle: Path, setup, hw: tuple[int, int]) -> None:
    predictor = setup[0]
    masks, _, _ = _run(vit_t_bundle, predictor.get_image_embedding(), np.array([[50.0, 50.0], [0, 0]]), np.array([1, -1]), hw)
    assert masks.shape == (1, 1, *hw)
