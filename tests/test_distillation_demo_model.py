"""The embedded `edgesam-demo` student: loads offline by name, is small, and segments held-out scenes."""

from __future__ import annotations

import argparse
import json

import torch

import edgesam
from edgesam.distillation.cli import add_eval_parser
from edgesam.distillation.datasets import SyntheticSceneDataset
from edgesam.distillation.demo import ASSET, DEMO_SCENES
from edgesam.distillation.evaluate import evaluate


def test_demo_model_loads_by_name_and_is_small():
    assert ASSET.is_file() and ASSET.stat().st_size <= 8 * 1024 * 1024
    model = edgesam.load_model("edgesam-demo")
    assert model.arch == "edgesam_demo" and model.image_size == 128
    x = torch.zeros(1, 3, 128, 128)
    assert model.encode(x).shape == (1, 64, 8, 8)


def test_demo_model_segments_held_out_scenes():
    torch.set_num_threads(1)
    model = edgesam.load_model("edgesam-demo")
    # seeds far from the training (0..) and validation (10_000_000..) scenes
    res = evaluate(model, SyntheticSceneDataset(12, image_size=128, seed=20_000_000, config=DEMO_SCENES))
    assert res["instances"] >= 12
    # measured: 0.617 and 0.517 (full-resolution loss, 3600 + 400 + 400 steps; the previous
    # multimask model 0.58 and 0.46, the token-0-only model before it 0.66 and 0.60)
    assert res["box_miou_gt"] > 0.58 and res["point_miou_gt"] > 0.47


def test_eval_cli(capsys):
    parser = argparse.ArgumentParser()
    add_eval_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["eval", "--model", "edgesam-demo", "--synthetic", "3", "--json", "--threads", "1"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == 3 and 0.0 <= out["box_miou_gt"] <= 1.0


def _scenes(n: int, seed: int = 20_000_000):
    from edgesam.scenes import generate_scene

    return [s for s in (generate_scene(seed + i, DEMO_SCENES) for i in range(n)) if len(s.masks)]


def _iou(a, b) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_demo_model_top_scored_multimask_mask_is_the_object():
    """The default point path (multimask, top score) gives the clicked object, not three weak guesses."""
    import numpy as np

    from edgesam.distillation.prompts import mask_center_point

    torch.set_num_threads(1)
    predictor = edgesam.SamPredictor(edgesam.load_model("edgesam-demo"))
    top, single = [], []
    for scene in _scenes(6):
        predictor.set_image(scene.image)
        for mask in scene.masks:
            pt = np.array([mask_center_point(mask)], np.float32)
            masks, scores, _ = predictor.predict(point_coords=pt, point_labels=np.ones(1))
            assert masks.shape[0] == 3 and scores.max() > 0.3  # measured: lowest 0.45
            top.append(_iou(masks[int(np.argmax(scores))], mask))
            masks, _, _ = predictor.predict(point_coords=pt, point_labels=np.ones(1), multimask_output=False)
            single.append(_iou(masks[0], mask))
    assert len(top) == 14
    # measured: 0.556 top-scored, 0.534 single-mask (the previous model 0.53 and 0.53; the
    # token-0-only model: 0.09 top-scored)
    assert np.mean(top) > 0.5 and np.mean(top) >= np.mean(single), (np.mean(top), np.mean(single))


def test_demo_model_everything_with_default_thresholds_says_why_it_returns_nothing():
    """Known shortfall: the model's calibrated IoU predictions stay below SAM's 0.88 default."""
    from edgesam.everything import SamAutomaticMaskGenerator

    torch.set_num_threads(1)
    gen = SamAutomaticMaskGenerator(edgesam.load_model("edgesam-demo"))  # pred_iou 0.88, stability 0.95
    scene = _scenes(1)[0]
    records = gen.generate(scene.image)
    stats = gen.last_stats
    assert stats.candidates == 3072 and stats.returned == len(records)
    if not records:  # measured: none, highest predicted IoU 0.49
        assert stats.explain().startswith("0 of 3072 candidates passed pred_iou_thresh=0.88; highest predicted IoU 0.")
    relaxed = SamAutomaticMaskGenerator(gen.predictor, pred_iou_thresh=0.3, stability_score_thresh=0.5,
                                        points_per_side=16)
    assert relaxed.generate(scene.image), relaxed.last_stats.explain()


def test_demo_model_tracker_keeps_a_moving_disc():
    """The issue's case: a click on a simple moving shape, default tracker settings."""
    import numpy as np
    from stream_doubles import disc_video

    from edgesam.stream import Tracker

    torch.set_num_threads(1)
    predictor = edgesam.SamPredictor(edgesam.load_model("edgesam-demo"))
    frames, discs = disc_video(16)
    tracker = Tracker(point=(28, 40))
    ious = []
    for frame, disc in zip(frames, discs):
        predictor.set_image(frame)
        result = tracker.update(predictor)
        assert not result.lost
        ious.append(_iou(result.mask, disc))
    # the "auto" check turns mask input off for this model (masks with and without it disagree)
    assert tracker.use_mask_input is False and tracker.mask_input_check < 0.9
    # measured: 16 of 16 frames at IoU >= 0.5, lowest 0.73 (the previous model: 12 of 16, lowest 0.44;
    # the one before it with the old tracker: lost by frame 3)
    assert np.mean(np.array(ious) >= 0.5) >= 0.9 and min(ious) > 0.6, np.round(ious, 2)


def test_demo_model_tracker_keeps_a_moving_rotating_shape():
    import numpy as np

    from edgesam.distillation.prompts import mask_center_point
    from edgesam.distillation.synthetic_video import VideoConfig, generate_video
    from edgesam.stream import Tracker

    torch.set_num_threads(1)
    predictor = edgesam.SamPredictor(edgesam.load_model("edgesam-demo"))
    kept = []
    for seed in (20_000_000, 20_000_001):
        video = generate_video(seed, VideoConfig(frames=24))
        tracker = Tracker(point=mask_center_point(video.masks[0]))
        for frame, truth in zip(video.frames, video.masks):
            predictor.set_image(frame)
            kept.append(_iou(tracker.update(predictor).mask, truth) >= 0.5)
    # measured: 0.94 of frames at IoU >= 0.5 (the previous model 0.29; the one before it and the old tracker: 0)
    assert np.mean(kept) >= 0.8, np.mean(kept)
