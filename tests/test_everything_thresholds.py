"""Segment-everything's default thresholds: SAM's, except for models calibrated lower (edgesam-demo)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgesam.cli import main
from edgesam.everything import SamAutomaticMaskGenerator
from edgesam.everything.thresholds import SAM_THRESHOLDS, default_thresholds, model_arch
from edgesam.io import write_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def demo_scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    from edgesam.distillation.demo_config import DEMO_SCENES
    from edgesam.scenes import generate_scene

    scene = generate_scene(20_000_011, DEMO_SCENES)
    return write_image(tmp_path_factory.mktemp("thresholds") / "scene.png", scene.image), scene.image


@pytest.fixture(scope="module")
def demo_predictor():
    import edgesam

    return edgesam.SamPredictor(edgesam.load_model("edgesam-demo"))


def test_sam_architectures_keep_sams_thresholds(vit_t_bundle: Path) -> None:
    pytest.importorskip("onnxruntime")
    from edgesam.predictor import SamPredictor

    predictor = SamPredictor.from_bundle(vit_t_bundle, backend="onnxruntime")
    assert model_arch(predictor.backend) == "vit_t"
    assert default_thresholds(predictor.backend) == SAM_THRESHOLDS
    gen = SamAutomaticMaskGenerator(predictor)
    assert (gen.pred_iou_thresh, gen.stability_score_thresh) == (0.88, 0.95)
    assert gen.thresholds_source == "SAM's defaults"


def test_the_embedded_model_finds_masks_at_its_own_defaults_and_none_at_sams(demo_predictor, demo_scene) -> None:
    _, image = demo_scene
    assert model_arch(demo_predictor.backend) == "edgesam_demo"
    own = SamAutomaticMaskGenerator(demo_predictor, points_per_side=16)
    assert (own.pred_iou_thresh, own.stability_score_thresh) == (0.6, 0.8)
    assert "edgesam-demo's own" in own.thresholds_source
    assert len(own.generate(image)) > 0
    sams = SamAutomaticMaskGenerator(demo_predictor, points_per_side=16, pred_iou_thresh=0.88, stability_score_thresh=0.95)
    assert sams.thresholds_source == "given"
    assert sams.generate(image) == [] and sams.last_stats.passed_iou == 0
    # one given, the other from the model
    half = SamAutomaticMaskGenerator(demo_predictor, pred_iou_thresh=0.7)
    assert (half.pred_iou_thresh, half.stability_score_thresh) == (0.7, 0.8)


def test_cli_says_which_thresholds_it_used_and_records_them(demo_scene, tmp_path: Path, capsys) -> None:
    path, _ = demo_scene
    out = tmp_path / "masks.json"
    assert main(["everything", str(path), "-o", str(out), "--points-per-side", "16", "-q"]) == 0
    text = capsys.readouterr().out
    assert "thresholds: pred_iou 0.6, stability 0.8: edgesam-demo's own" in text
    header = json.loads(out.read_text())
    assert (header["settings"]["pred_iou_thresh"], header["settings"]["stability_score_thresh"]) == (0.6, 0.8)
    assert main(["everything", str(path), "-o", str(out), "--points-per-side", "16", "-q",
                 "--pred-iou-thresh", "0.88", "--stability-score-thresh", "0.95"]) == 0  # fmt: skip
    assert "thresholds:" not in capsys.readouterr().out  # given: nothing to explain


def test_cli_refuses_a_folder_as_output_before_working(demo_scene, tmp_path: Path, capsys) -> None:
    path, _ = demo_scene
    assert main(["everything", str(path), "-o", str(tmp_path)]) == 2
    assert f"-o {tmp_path} is a folder" in capsys.readouterr().err
    assert main(["everything", str(path), "-o", str(tmp_path / "m.json"), "--overlay", str(tmp_path)]) == 2
    assert not (tmp_path / "m.json").exists()
