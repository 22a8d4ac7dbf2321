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
    assert res["box_miou_gt"] > 0.55 and res["point_miou_gt"] > 0.45  # measured: 0.66 and 0.60


def test_eval_cli(capsys):
    parser = argparse.ArgumentParser()
    add_eval_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["eval", "--model", "edgesam-demo", "--synthetic", "3", "--json", "--threads", "1"])
    assert args.func(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["images"] == 3 and 0.0 <= out["box_miou_gt"] <= 1.0
