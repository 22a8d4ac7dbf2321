"""``everything`` on a large image: bounded memory per mask, the same masks, progress, streamed JSON.

A tiny seeded model (128 px) on a multi-megapixel noise image with both filters off: every
candidate mask spans most of the image, the case that used to hold ~10 bytes per pixel per
candidate. Memory is measured with ``tracemalloc`` (numpy reports its buffers to it).
"""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from edgesam.everything import SamAutomaticMaskGenerator  # noqa: E402
from edgesam.everything.lowmem import STRIP_PIXELS  # noqa: E402
from edgesam.predictor import SamPredictor  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def predictor() -> SamPredictor:
    from bundle_fixtures import tiny_model

    return SamPredictor(tiny_model())


def _peak(predictor: SamPredictor, image: np.ndarray, **attrs) -> tuple[int, object, list]:
    gen = SamAutomaticMaskGenerator(predictor, points_per_side=2, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    seen: list[tuple[int, int]] = []
    gen.progress = lambda done, total: seen.append((done, total))
    for name, value in attrs.items():
        setattr(gen, name, value)
    tracemalloc.start()
    try:
        masks = gen.generate_mask_set(image)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, masks, seen


def test_memory_per_mask_does_not_grow_with_the_image_area(predictor) -> None:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (900, 1200, 3), dtype=np.uint8)  # 1.1 Mpx
    large = rng.integers(0, 256, (1800, 2400, 3), dtype=np.uint8)  # 4.3 Mpx (4x the area)
    peak_small, _, _ = _peak(predictor, small, low_memory_pixels=0)
    peak_large, masks, seen = _peak(predictor, large)  # the default switches to strips here
    runs = sum(len(r["counts"]) for r in masks.rles)
    s, width = predictor.backend.image_size, large.shape[1]
    # the stated bound: horizontal pass 4*S*W + one strip (~12 B/px of STRIP_PIXELS) + 8 B per run kept
    bound = 4 * s * width + 16 * STRIP_PIXELS + 16 * runs + (4 << 20)
    assert peak_large < bound, (peak_large, bound)
    assert peak_large < 2 * peak_small + (4 << 20), (peak_small, peak_large)
    assert seen[-1] == (4, 4) and len(masks) >= 1


def test_strips_give_the_same_masks_as_the_whole_rectangle() -> None:
    import edgesam
    from edgesam.scenes import SceneConfig, generate_scene

    pred = SamPredictor(edgesam.load_model("edgesam-demo"))
    image = generate_scene(5, SceneConfig(height=150, width=200, min_objects=3, max_objects=4)).image
    kwargs = dict(points_per_side=3, pred_iou_thresh=0.0, stability_score_thresh=0.0, output_mode="uncompressed_rle")
    whole = SamAutomaticMaskGenerator(pred, **kwargs).generate(image)
    strips = SamAutomaticMaskGenerator(pred, **kwargs)
    strips.low_memory_pixels, strips.strip_pixels = 0, 12000  # every crop, several strips per mask
    streamed = strips.generate(image)
    # filters off: empty masks are returned too, with a NaN stability score (0 / 0) that never equals itself
    def same(records):
        return [{k: ("nan" if k == "stability_score" and v != v else v) for k, v in r.items()} for r in records]

    assert len(whole) >= 3 and same(streamed) == same(whole)
    assert all(isinstance(r["segmentation"]["counts"], list) for r in streamed)


def test_cli_streams_records_and_shows_progress(tmp_path: Path, capsys) -> None:
    from edgesam.cli import main
    from edgesam.everything import coco_rle_to_mask
    from edgesam.io import read_image, write_image
    from edgesam.scenes import SceneConfig, generate_scene

    image = generate_scene(5, SceneConfig(height=150, width=200, min_objects=3, max_objects=4)).image
    write_image(tmp_path / "scene.png", image)
    out = tmp_path / "masks.json"
    code = main(["everything", "edgesam-demo", str(tmp_path / "scene.png"), "--points-per-side", "4",
                 "--pred-iou-thresh", "0", "--stability-score-thresh", "0", "--out", str(out),
                 "--overlay", str(tmp_path / "all.png")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "everything: 16/16 prompts decoded (100%" in captured.err
    doc = json.loads(out.read_text(), parse_constant=_no_nan)  # valid JSON: no NaN / Infinity
    assert doc["image_size"] == [150, 200] and len(doc["masks"]) >= 3
    for record in doc["masks"]:
        assert coco_rle_to_mask(record["segmentation"]).sum() == record["area"]
    assert not list(tmp_path.glob(".*.part"))
    drawn = read_image(tmp_path / "all.png")
    assert drawn.shape[0] > 150 and drawn.shape[1] == 200  # the caption strip below the image
    assert (drawn[150:] > 200).mean() > 0.8 and (drawn[150:] < 60).any()  # white strip, dark text


def _no_nan(name: str) -> None:
    raise AssertionError(f"{name} in the JSON output (an empty mask's stability is NaN; JSON needs null)")
