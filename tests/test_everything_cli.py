"""``edgesam everything``: JSON records that decode to the generator's masks, and the overlay."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgesam.cli import main
from edgesam.everything import coco_rle_to_mask, rle_to_mask
from edgesam.io import read_image, write_image
from edgesam.viz import distinct_colors, overlay

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def scene_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    from edgesam.distillation.demo import DEMO_SCENES
    from edgesam.scenes import generate_scene

    scene = generate_scene(20_000_003, DEMO_SCENES)
    path = write_image(tmp_path_factory.mktemp("everything") / "scene.png", scene.image)
    return path, scene.masks


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 0
    return capsys.readouterr().out


def test_everything_writes_decodable_records_and_an_overlay(scene_file, tmp_path: Path, capsys) -> None:
    import edgesam
    from edgesam.everything import SamAutomaticMaskGenerator

    image_path, gt = scene_file
    out, drawn = tmp_path / "masks.json", tmp_path / "overlay.png"
    args = ["everything", "edgesam-demo", str(image_path), "-o", str(out),
            "--overlay", str(drawn), "--points-per-side", "8", "--pred-iou-thresh", "0.1",
            "--stability-score-thresh", "0"]  # fmt: skip
    text = _run(args, capsys)
    doc = json.loads(out.read_text())
    records = doc["masks"]
    assert f"{len(records)} masks" in text and doc["image_size"] == list(gt.shape[1:])
    assert doc["settings"]["points_per_side"] == 8 and doc["settings"]["output_mode"] == "coco_rle"
    assert records  # (the demo model's click masks are soft: default thresholds would keep none)
    keys = {"segmentation", "area", "bbox", "predicted_iou", "stability_score", "point_coords", "crop_box"}
    for rec in records:
        assert set(rec) == keys
        mask = coco_rle_to_mask(rec["segmentation"])
        assert mask.shape == gt.shape[1:] and int(mask.sum()) == rec["area"]
        ys, xs = np.nonzero(mask)
        assert rec["bbox"] == [int(xs.min()), int(ys.min()), int(xs.max() - xs.min()), int(ys.max() - ys.min())]
    # the same masks as the Python API
    gen = SamAutomaticMaskGenerator(edgesam.load_model("edgesam-demo"), points_per_side=8, pred_iou_thresh=0.1,
                                    stability_score_thresh=0.0, output_mode="coco_rle")  # fmt: skip
    api = gen.generate(read_image(image_path))
    assert [r["segmentation"] for r in api] == [r["segmentation"] for r in records]
    # overlay: the image (coloured where there are masks) above a caption strip
    picture, image = read_image(drawn), read_image(image_path)
    assert picture.shape[1:] == image.shape[1:] and picture.shape[0] > image.shape[0]
    picture = picture[: image.shape[0]]
    union = np.any([coco_rle_to_mask(r["segmentation"]) for r in records], axis=0)
    assert np.abs(picture.astype(int) - image)[union].mean() > 5


def test_everything_uncompressed_rle_with_a_bundle(scene_file, tmp_path: Path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    from bundle_fixtures import tiny_model

    from edgesam.export import export_bundle

    bundle = export_bundle(tiny_model(), tmp_path / "bundle")
    out = tmp_path / "masks.json"
    _run(["everything", str(bundle), str(scene_file[0]), "-o", str(out), "--points-per-side", "4",
          "--pred-iou-thresh", "0", "--stability-score-thresh", "0", "--output-mode", "uncompressed_rle",
          "--coarse-to-fine"], capsys)  # fmt: skip
    doc = json.loads(out.read_text(), parse_constant=_no_nan)  # valid JSON: no NaN / Infinity
    assert doc["backend"] == "onnxruntime" and doc["settings"]["coarse_to_fine"] is True
    for rec in doc["masks"]:
        assert isinstance(rec["segmentation"]["counts"], list)
        assert int(rle_to_mask(rec["segmentation"]).sum()) == rec["area"]


def test_everything_errors_are_one_line(tmp_path: Path, capsys) -> None:
    assert main(["everything", "edgesam-demo", str(tmp_path / "none.png"), "-o",
                 str(tmp_path / "m.json")]) == 2  # fmt: skip
    assert "image not found" in capsys.readouterr().err


def test_distinct_colors_and_many_mask_overlay() -> None:
    colours = distinct_colors(120)
    assert colours.shape == (120, 3) and len({tuple(c) for c in colours.astype(int)}) == 120
    assert np.array_equal(colours[:6], distinct_colors(6))
    image = np.full((40, 60, 3), 100, np.uint8)
    masks = np.zeros((10, 40, 60), bool)
    for i in range(10):
        masks[i, :, i * 6 : i * 6 + 6] = True
    out = overlay(image, masks, alpha=1.0)
    firsts = {tuple(out[20, i * 6 + 3]) for i in range(10)}
    assert len(firsts) == 10  # every mask has its own colour
    with pytest.raises(ValueError, match="colors"):
        overlay(image, masks, colors=colours[:3])


def test_an_empty_result_says_which_filter_removed_everything(scene_file, tmp_path: Path, capsys) -> None:
    import edgesam
    from edgesam.everything import SamAutomaticMaskGenerator

    image = read_image(scene_file[0])
    model = edgesam.load_model("edgesam-demo")
    gen = SamAutomaticMaskGenerator(model, points_per_side=4, pred_iou_thresh=0.999)
    assert gen.generate(image) == []
    stats = gen.last_stats
    assert stats.candidates == 48 and stats.passed_iou == 0 and stats.returned == 0  # 16 points x 3 masks
    assert 0 < stats.max_predicted_iou <= 0.999
    assert stats.explain() == (f"0 of 48 candidates passed pred_iou_thresh=0.999; "
                               f"highest predicted IoU {stats.max_predicted_iou:.2f}")
    gen = SamAutomaticMaskGenerator(model, points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=1.01)
    assert gen.generate(image) == []
    assert gen.last_stats.passed_iou == 48 and gen.last_stats.passed_stability == 0
    assert "0 of them stability_score_thresh=1.01; highest stability score" in gen.last_stats.explain()
    kept = SamAutomaticMaskGenerator(model, points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    records = kept.generate(image)
    assert kept.last_stats.passed_stability == 48 and kept.last_stats.returned == len(records) > 0
    text = _run(["everything", "edgesam-demo", str(scene_file[0]), "-o", str(tmp_path / "m.json"),
                 "--points-per-side", "4", "--pred-iou-thresh", "0.999"], capsys)  # fmt: skip
    assert "0 masks" in text and "no masks: 0 of 48 candidates passed pred_iou_thresh=0.999" in text


def _no_nan(name: str) -> None:
    raise AssertionError(f"{name} in the JSON output (an empty mask's stability is NaN; JSON needs null)")
