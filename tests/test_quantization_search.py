"""The INT8 search: natural-photo calibration, the fewest layers out of INT8, honest reporting, quiet NNCF."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from bundle_fixtures import scene  # noqa: E402

from edgesam.bundle.format import METADATA_FILE, load_bundle  # noqa: E402
from edgesam.quantization.accuracy import AccuracyReport  # noqa: E402
from edgesam.quantization.recipes import get_recipe  # noqa: E402

PRE = dict(image_size=256, pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])


def test_default_calibration_is_public_domain_photos_mixed_with_scenes() -> None:
    pytest.importorskip("skimage")
    from edgesam.quantization.photos import PHOTOS, default_image_sets

    calib, held, info = default_image_sets(8, 4, seed=0, **PRE)
    names = [im.name for im in calib.images]
    held_names = [im.name for im in held.images]
    assert info["source"] == "photos+samples" and len(calib) == 8 and len(held) == 4
    assert sum(n.startswith("skimage:") for n in names) == 6 == info["calibration_photos"]
    assert sum(n.startswith("skimage:") for n in held_names) == 2 == info["heldout_photos"]
    assert not set(names) & set(held_names)  # the gate measures photos it was not calibrated on
    assert all(p["licence"] == PHOTOS[p["name"].split(".")[-1]].licence for p in info["photos"])
    for item in (*calib.images, *held.images):
        assert item.image.dtype == np.uint8 and item.image.ndim == 3 and item.image.shape[2] == 3
    photo = next(im.image for im in calib.images if im.name == "skimage:astronaut")
    assert photo.shape == (512, 512, 3) and photo.std() > 30  # a real photograph, not a blank frame
    feed = next(iter(calib))["image"]
    assert feed.shape == (1, 3, 256, 256) and feed.dtype == np.float32


def test_without_scikit_image_the_scenes_are_used_and_said(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgesam.quantization.photos import default_image_sets

    monkeypatch.setitem(sys.modules, "skimage", None)  # as if scikit-image were not installed
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    calib, held, info = default_image_sets(3, 2, seed=0, **PRE)
    assert info["source"] == "package samples" and "scikit-image is not installed" in info["note"]
    assert len(calib) == 3 and len(held) == 2 and not any(im.name.startswith("skimage:") for im in calib.images)


# -- the fewest layers out of INT8 -------------------------------------------------------------


def _embedding_gate(fp32: Path, threshold: float):
    """A real gate, cheaper than masks: cosine of the encoder outputs vs fp32 on one scene."""
    import onnxruntime as ort

    from edgesam.quantization.calibration import CalibrationSet

    x = CalibrationSet([scene()[0]], **PRE).model_input(0)
    reference = ort.InferenceSession(str(fp32 / "encoder.onnx"), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    cache: dict[Path, float] = {}

    def gate(folder: Path, precision: str = "fp32") -> AccuracyReport:
        if folder not in cache:
            session = ort.InferenceSession(str(folder / "encoder.onnx"), providers=["CPUExecutionProvider"])
            out = session.run(None, {"image": x})[0]
            cache[folder] = float((out * reference).sum() / np.linalg.norm(out) / np.linalg.norm(reference))
        c = cache[folder]
        # the test's gate is on the embedding cosine; it fills the report's IoU fields with it
        return AccuracyReport(images=1, prompts=0, embedding_cosine_mean=c, embedding_cosine_min=c, mask_iou_mean=c,
                              mask_iou_min=c, mask_iou_by_kind={}, score_abs_diff_mean=0.0, score_abs_diff_max=0.0,
                              min_mask_iou=threshold, passed=c >= threshold)  # fmt: skip

    return gate, cache


@pytest.mark.slow  # about ten ONNX Runtime quantizations of the 256 px encoder
def test_bisection_keeps_fewer_layers_than_the_doubling_fallback(vit_t_bundle: Path,
                                                                 tmp_path: Path) -> None:  # fmt: skip
    from dataclasses import replace

    from edgesam.quantization.calibration import CalibrationSet
    from edgesam.quantization.engines import GraphJob, make_engine
    from edgesam.quantization.search import fewest_float_layers
    from edgesam.quantization.sensitivity import search_float_layers

    fp32 = vit_t_bundle
    # the last stage and the neck only: few layers, cheap builds
    recipe = get_recipe("ort-int8").replace(exclude_patterns=(r"patch_embed|layers\.[012]/",))
    engine = make_engine("onnxruntime", recipe)
    feeds = list(CalibrationSet([scene(seed=s)[0] for s in (1, 2)], **PRE))
    job = GraphJob("encoder", fp32 / "encoder.onnx", feeds, tmp_path / "work")
    builds: dict[tuple[str, ...], Path] = {}

    def build(kept: tuple[str, ...]) -> Path:
        if kept not in builds:
            folder = tmp_path / f"b{len(builds)}"
            folder.mkdir()
            engine.quantize(job, folder, list(kept))
            builds[kept] = folder
        return builds[kept]

    engine.quantize(job, tmp_path, [])  # prepares the graph the ranking reads
    ranking = engine.rank(job)
    assert len(ranking) >= 8
    names = [n for n, _ in ranking]
    probe_gate, _ = _embedding_gate(fp32, 0.0)
    cos = {k: probe_gate(build(tuple(names[:k]))).embedding_cosine_mean for k in (1, 2, 4, 6)}
    # a threshold that 6 layers in float reach and 1, 2 and 4 do not: doubling must overshoot to 8
    assert cos[6] > max(cos[1], cos[2], cos[4]), cos
    threshold = cos[6]
    gate, _ = _embedding_gate(fp32, threshold)

    _, before = search_float_layers(ranking, build, gate)
    after, steps = fewest_float_layers(ranking, build, gate)
    assert before.passed and after.report.passed
    assert len(before.kept_float) == 8  # the doubling fallback: 1, 2, 4, 8
    assert len(after.kept) <= 6 < len(before.kept_float)
    assert [s["kept_float"] for s in steps][:4] == [1, 2, 4, 8]
    assert after.report.kept_float == after.kept and len(after.report.search) == len(steps)
    assert replace(after.report, kept_float=(), search=()).passed


def test_search_tries_bf16_first_then_fp32() -> None:
    from edgesam.quantization.search import fewest_float_layers

    def report(iou: float) -> AccuracyReport:
        return AccuracyReport(images=1, prompts=1, embedding_cosine_mean=iou, embedding_cosine_min=iou, mask_iou_mean=iou,
                              mask_iou_min=iou, mask_iou_by_kind={}, score_abs_diff_mean=0.0, score_abs_diff_max=0.0,
                              min_mask_iou=0.9, passed=iou >= 0.9)  # fmt: skip

    # bf16 float parts cost IoU; 3 layers pass in f32, 5 in bf16: the fewest layers wins, at f32
    def gate(kept: tuple[str, ...], precision: str) -> AccuracyReport:
        return report(0.8 + 0.03 * len(kept) + (0.0 if precision == "fp32" else -0.06))

    ranking = [(f"l{i}", 1.0 / (i + 1)) for i in range(10)]
    probe, steps = fewest_float_layers(ranking, lambda kept: kept, gate, precisions=("bf16", "fp32"))
    assert len(probe.kept) == 4 and probe.precision == "fp32"  # 0.8 + 0.12 = 0.92 in fp32
    assert [(s["kept_float"], s["float_precision"]) for s in steps[:2]] == [(1, "bf16"), (1, "fp32")]
    with pytest.raises(ValueError, match="ranking is empty"):
        fewest_float_layers([], lambda kept: kept, gate)


# -- reporting: nothing quantized, not faster ---------------------------------------------------


def _cli(argv: list[str]) -> int:
    from edgesam.commands import quantize

    parser = argparse.ArgumentParser()
    quantize.add_parser(parser.add_subparsers())
    args = parser.parse_args(["quantize", *argv])
    return args.func(args)


def test_a_bundle_with_nothing_quantized_is_refused_unless_allowed(
    vit_t_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import cv2

    fp32 = vit_t_bundle
    calib = tmp_path / "calib"
    calib.mkdir()
    for i in range(3):
        cv2.imwrite(str(calib / f"{i}.png"), scene(seed=i, height=90, width=120)[0][..., ::-1])
    common = [str(fp32), "--backend", "onnxruntime", "--recipe", "ort-int8", "--calib", str(calib),
              "--exclude", ".", "--no-search"]  # fmt: skip
    assert _cli([*common, "-o", str(tmp_path / "none")]) == 1
    captured = capsys.readouterr()
    assert "nothing is quantized: 0 of" in captured.err and "--allow-slow" in captured.err
    assert not (tmp_path / "none").exists()

    assert _cli([*common, "-o", str(tmp_path / "allowed"), "--allow-slow"]) == 0
    captured = capsys.readouterr()
    total = load_bundle(tmp_path / "allowed").metadata["quantization"]["graphs"]["encoder"]["compute_ops"]
    assert f"0 of {total} encoder ops INT8" in captured.out and "NOTHING IS QUANTIZED" in captured.out
    assert "nothing is quantized; written anyway because of --allow-slow" in captured.err
    quant = json.loads((tmp_path / "allowed" / METADATA_FILE).read_text())["quantization"]
    assert quant["graphs"]["encoder"]["int8_ops"] == 0 and total > 50
    assert quant["speed"]["reference_ms"] > 0 and quant["speed"]["rounds"] >= 5


def test_the_fp32_bundle_is_not_measurably_faster_than_itself(vit_t_bundle: Path) -> None:
    from edgesam.quantization.speed import compare_speed
    from edgesam.runtimes.loader import load_backend

    fp32 = vit_t_bundle
    a, b = load_backend(fp32, "onnxruntime"), load_backend(fp32, "onnxruntime")
    # the same graph twice: timing noise on a loaded 2-core machine can exceed the 5% default margin
    # in 3 rounds, but never makes one copy twice as fast as the other
    speed = compare_speed(a, b, label="onnxruntime CPU fp32", rounds=3, margin=0.5)
    assert not speed.faster and speed.reference_ms > 0 and speed.candidate_ms > 0
    assert "NOT measurably faster" in speed.summary() and speed.to_dict()["margin"] == 0.5


def test_fast_encoders_are_timed_for_a_minimum_time_not_a_handful_of_rounds(vit_t_bundle: Path) -> None:
    from edgesam.quantization.speed import time_encoders
    from edgesam.runtimes.loader import load_backend

    backend = load_backend(vit_t_bundle, "onnxruntime")
    times = time_encoders({"a": backend}, backend.image_size, rounds=1, min_seconds=0.3)
    assert sum(times["a"]) >= 300 and len(times["a"]) >= 2
    capped = time_encoders({"a": backend}, backend.image_size, rounds=1, min_seconds=100.0, max_rounds=3)
    assert len(capped["a"]) == 3


# -- NNCF ----------------------------------------------------------------------------------------


def test_nncf_is_quiet_and_counts_int8_ops(vit_t_bundle: Path, capfd: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from edgesam.quantization.calibration import CalibrationSet
    from edgesam.quantization.openvino_int8 import int8_ops, quantize_openvino, read_model

    fp32 = vit_t_bundle
    feeds = list(CalibrationSet([scene(seed=s)[0] for s in (1, 2)], **PRE))
    capfd.readouterr()
    model = quantize_openvino(fp32 / "encoder.onnx", feeds, get_recipe("ov-nncf-default"))
    out, err = capfd.readouterr()
    assert out == "" and "Statistics collection" not in err and "Applying" not in err, (out, err)
    done, total = int8_ops(model)
    assert int8_ops(read_model(fp32 / "encoder.onnx")) == (0, total)
    assert 0.5 * total < done < total  # the attention's softmax @ V products stay float
