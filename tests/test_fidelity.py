"""The fidelity module: measures, the report, and the comparison of two real predictors."""

from __future__ import annotations

import numpy as np
import pytest

from edgesam.fidelity import (
    GATE_MIN_IOU,
    FidelityMeter,
    FidelityReport,
    click_inside,
    compare_predictors,
    relative_error,
)


def test_click_inside_lands_on_the_mask_even_for_a_ring() -> None:
    yy, xx = np.mgrid[0:64, 0:64]
    r = np.hypot(yy - 32, xx - 32)
    ring = (r > 12) & (r < 20)
    x, y = click_inside(ring)
    assert ring[int(y), int(x)]
    with pytest.raises(ValueError, match="non-empty"):
        click_inside(np.zeros((8, 8), bool))


def test_relative_error_and_shape_mismatch() -> None:
    ref = np.array([0.0, 4.0])
    assert relative_error(np.array([0.0, 5.0]), ref) == pytest.approx(0.25)
    assert relative_error(np.zeros(3), ref) == float("inf")


def test_meter_summarises_per_kind_and_percentiles() -> None:
    meter = FidelityMeter()
    emb = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)
    meter.add_embeddings(emb, emb * 1.5)
    full = np.ones((2, 4, 4), bool)
    half = full.copy()
    half[1, :2] = False  # IoU 0.5 for the second mask
    meter.add_masks(full, half, kind="point", prompts=2)
    meter.add_masks(full, full, kind="box", prompts=2)
    meter.add_scores(np.array([0.9, 0.8]), np.array([0.7, 0.8]))
    report = meter.report()
    assert report.images == 1 and report.prompts == 4 and report.masks == 4
    assert report.embedding_cosine_mean == pytest.approx(1.0)
    assert report.embedding_rel_error == pytest.approx(3.5 / 7.0)
    assert report.mask_iou_by_kind == {"point": pytest.approx(0.75), "box": pytest.approx(1.0)}
    assert report.mask_iou_min_by_kind["point"] == pytest.approx(0.5)
    assert report.mask_iou_min == pytest.approx(0.5) and report.mask_iou_mean == pytest.approx(0.875)
    assert 0.5 <= report.mask_iou_p5 < 0.6
    assert report.score_abs_diff_max == pytest.approx(0.2)
    assert FidelityReport.from_dict(report.to_dict()) == report
    assert not report.passes(GATE_MIN_IOU) and report.passes(0.8)
    with pytest.raises(ValueError, match="no masks"):
        FidelityMeter().report()


@pytest.fixture(scope="module")
def predictors():
    torch = pytest.importorskip("torch")
    from bundle_fixtures import tiny_model

    from edgesam.predictor import SamPredictor
    from edgesam.runtimes.torch_backend import TorchBackend

    ref = SamPredictor(TorchBackend(tiny_model()))
    same = SamPredictor(TorchBackend(tiny_model()))
    other_model = tiny_model()
    with torch.no_grad():
        for p in other_model.image_encoder.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return ref, same, SamPredictor(TorchBackend(other_model))


def _images() -> list[np.ndarray]:
    from bundle_fixtures import scene

    return [scene(seed)[0] for seed in (1, 2)]


def test_compare_identical_predictors_is_exact(predictors) -> None:
    ref, same, _ = predictors
    calls: list[tuple[int, int]] = []
    report = compare_predictors(ref, same, _images(), prompts_per_image=4, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 2), (2, 2)]
    assert report.images == 2 and report.prompts == 8 and report.masks == 8 * 4
    assert set(report.mask_iou_by_kind) == {"point", "points", "box", "box+point"}
    assert report.mask_iou_min == 1.0 and report.embedding_rel_error == 0.0
    assert report.embedding_cosine_min == pytest.approx(1.0)
    assert report.score_abs_diff_max == 0.0


def test_compare_detects_a_different_encoder(predictors) -> None:
    ref, _, other = predictors
    report = compare_predictors(ref, other, _images(), prompts_per_image=4)
    assert report.embedding_cosine_mean < 0.999
    assert report.embedding_rel_error > 1e-3
    assert report.mask_iou_min < 1.0 and report.mask_iou_p5 <= report.mask_iou_mean
    assert "mask IoU mean" in report.summary()


def test_compare_rejects_bad_images(predictors) -> None:
    ref, same, _ = predictors
    with pytest.raises(ValueError, match="at least one image"):
        compare_predictors(ref, same, [])
    with pytest.raises(ValueError, match="uint8"):
        compare_predictors(ref, same, [np.zeros((8, 8), np.float32)])
