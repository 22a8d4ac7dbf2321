"""``quantize_bundle`` end to end on the small vit_t bundle (256 px): ONNX Runtime, TensorRT Q/DQ, CLI."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from bundle_fixtures import scene  # noqa: E402

from edgesam.bundle.format import METADATA_FILE, BundleError, load_bundle  # noqa: E402
from edgesam.predictor import SamPredictor  # noqa: E402
from edgesam.quantization import AccuracyGateError, AlreadyQuantizedError, get_recipe, quantize_bundle  # noqa: E402
from edgesam.runtimes.base import BackendUnavailableError  # noqa: E402

# few images and prompts: these tests check behaviour, the benchmark measures fidelity
FAST = dict(calibration_images=6, heldout_images=1, prompts_per_image=4)
RELAXED_IOU = 0.5  # random weights give near-threshold masks (see the README's quantization figures)


@pytest.fixture(scope="module")
def ort_bundle(vit_t_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("quant") / "int8"
    recipe = get_recipe("ort-int8").replace(**FAST)
    quantize_bundle(vit_t_bundle, out, backend="onnxruntime", recipe=recipe, min_mask_iou=RELAXED_IOU, search=False)
    return out


def test_ort_int8_bundle_runs_through_the_predictor(ort_bundle: Path, vit_t_bundle: Path) -> None:
    image, boxes = scene()
    quantized = SamPredictor.from_bundle(ort_bundle)
    reference = SamPredictor.from_bundle(vit_t_bundle)
    for predictor in (quantized, reference):
        predictor.set_image(image)
    masks, scores, logits = quantized.predict(box=boxes[0])
    ref_masks, _, _ = reference.predict(box=boxes[0])
    assert masks.shape == ref_masks.shape == (3, *image.shape[:2]) and scores.shape == (3,)
    emb, ref_emb = quantized.get_image_embedding(), reference.get_image_embedding()
    assert float((emb * ref_emb).sum() / np.linalg.norm(emb) / np.linalg.norm(ref_emb)) > 0.98
    sizes = [(b / "encoder.onnx").stat().st_size for b in (ort_bundle, vit_t_bundle)]
    assert sizes[0] < 0.4 * sizes[1]  # int8 weights


def test_metadata_records_recipe_and_accuracy(ort_bundle: Path, vit_t_bundle: Path) -> None:
    bundle = load_bundle(ort_bundle)  # hashes verified
    meta = bundle.metadata
    quant = meta["quantization"]
    assert meta["precision"] == "int8" and quant["backend"] == "onnxruntime"
    assert quant["recipe"]["name"] == "ort-int8" and quant["recipe"]["calibration"]["images"] == 6
    photos = importlib.util.find_spec("skimage") is not None
    assert quant["calibration"]["source"] == ("photos+samples" if photos else "package samples")
    assert quant["float_precision"] == "fp32"  # ONNX Runtime runs the float parts in fp32
    ops = quant["graphs"]["encoder"]
    assert 0 < ops["int8_ops"] < ops["compute_ops"]  # the attention's activation MatMuls stay float
    assert quant["speed"]["reference"] == "onnxruntime CPU fp32" and quant["speed"]["candidate_ms"] > 0
    report = quant["accuracy"]
    assert report["passed"] and report["mask_iou_mean"] >= RELAXED_IOU and report["min_mask_iou"] == RELAXED_IOU
    assert 0.98 < report["embedding_cosine_mean"] <= 1.0 and report["prompts"] == 4
    assert quant["graphs"]["encoder"]["lowered_matmuls"] > 0
    ops = {n.op_type for n in onnx.load(str(bundle.path("encoder"))).graph.node}
    assert {"MatMulIntegerToFloat", "QuantizeLinear"} <= ops
    source = load_bundle(vit_t_bundle)
    assert bundle.sha256("decoder") == source.sha256("decoder")  # the recipe leaves the decoder in fp32
    assert quant["source"]["encoder_sha256"] == source.sha256("encoder")


def test_decoder_recipe_quantizes_the_factored_decoder(vit_t_bundle: Path, tmp_path: Path) -> None:
    recipe = get_recipe("ort-int8-decoder").replace(**FAST)
    out = tmp_path / "int8-decoder"
    quantize_bundle(vit_t_bundle, out, backend="onnxruntime", recipe=recipe, min_mask_iou=RELAXED_IOU, search=False)
    graph = onnx.load(str(out / "decoder.onnx")).graph
    weights = {i.name: len(i.dims) for i in graph.initializer}
    lowered = [n for n in graph.node if n.op_type == "MatMulIntegerToFloat"]
    assert lowered and all(weights[n.input[1]] == 2 for n in lowered)
    # the per-head products with 3-D constant weights stay float MatMuls
    assert any(n.op_type == "MatMul" and weights.get(n.input[1], 0) == 3 for n in graph.node)
    image, boxes = scene()
    predictor = SamPredictor.from_bundle(out)
    predictor.set_image(image)
    masks, scores, _ = predictor.predict(box=boxes[0])
    assert masks.shape == (3, *image.shape[:2]) and np.isfinite(scores).all()


def test_quantized_bundle_names_its_runtime(ort_bundle: Path) -> None:
    pytest.importorskip("openvino")
    with pytest.raises(BundleError, match="quantized for onnxruntime"):
        SamPredictor.from_bundle(ort_bundle, backend="openvino", cache_dir=None)


def test_already_quantized_bundle_is_refused(ort_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(AlreadyQuantizedError, match="already quantized"):
        quantize_bundle(ort_bundle, tmp_path / "again", backend="onnxruntime")
    assert not (tmp_path / "again").exists()


def test_interrupted_quantization_leaves_no_bundle(vit_t_bundle: Path, tmp_path: Path) -> None:
    def interrupt(message: str) -> None:
        if "quantizing with recipe" in message:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        quantize_bundle(vit_t_bundle, tmp_path / "out", backend="onnxruntime",
                        recipe=get_recipe("ort-int8").replace(**FAST), log=interrupt)  # fmt: skip
    assert list(tmp_path.iterdir()) == []  # neither the bundle nor a temporary folder


def test_failed_gate_writes_nothing(vit_t_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(AccuracyGateError, match="fails the accuracy gate") as info:
        quantize_bundle(vit_t_bundle, tmp_path / "out", backend="onnxruntime",
                        recipe=get_recipe("ort-int8").replace(**FAST), min_mask_iou=1.0, search=False)  # fmt: skip
    assert info.value.report.mask_iou_mean < 1.0
    assert list(tmp_path.iterdir()) == []


def test_search_keeps_sensitive_layers_in_float(vit_t_bundle: Path, tmp_path: Path) -> None:
    # quantize only the last stage and the neck, so the search has few layers to go through
    recipe = get_recipe("ort-int8").replace(exclude_patterns=(r"patch_embed|layers\.[012]/",), **FAST)
    result = quantize_bundle(vit_t_bundle, tmp_path / "out", backend="onnxruntime", recipe=recipe,
                             min_mask_iou=0.999, gate=False, measure_speed=False)  # fmt: skip
    report = result.report
    assert report.kept_float and all(k.startswith("encoder:") for k in report.kept_float)
    counts = [s["kept_float"] for s in report.search]
    kept = len(report.kept_float)
    if report.passed:  # the fewest: every smaller count probed failed
        assert all(not s["passed"] for s in report.search if s["kept_float"] < kept)
    assert counts[0] == 1 and all(s["float_precision"] == "fp32" for s in report.search)
    assert not any("layers.0" in k for k in report.kept_float)
    meta = json.loads((result.path / METADATA_FILE).read_text())
    floats = set(meta["quantization"]["graphs"]["encoder"]["float_nodes"])
    assert {k.split(":", 1)[1] for k in report.kept_float} <= floats
    assert meta["quantization"]["accuracy"]["kept_float"] == list(report.kept_float)


def test_missing_toolchain_is_a_clear_error(vit_t_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nncf", None)  # as if nncf were not installed
    with pytest.raises(BackendUnavailableError, match=r"edgesam\[openvino\]"):
        quantize_bundle(vit_t_bundle, tmp_path / "out", backend="openvino")
    with pytest.raises(ValueError, match="is for backend 'onnxruntime'"):
        quantize_bundle(vit_t_bundle, tmp_path / "out", backend="tensorrt", recipe="ort-int8")


def test_tensorrt_bundle_is_explicit_qdq(vit_t_bundle: Path, tmp_path: Path) -> None:
    from edgesam.quantization.tensorrt_int8 import check_explicit_quantization, tensorrt_available

    result = quantize_bundle(vit_t_bundle, tmp_path / "trt", backend="tensorrt",
                             recipe=get_recipe("trt-int8").replace(**FAST), min_mask_iou=RELAXED_IOU, search=False)  # fmt: skip
    bundle = load_bundle(result.path)
    assert check_explicit_quantization(onnx.load(str(bundle.path("encoder")))) > 0
    quant = bundle.metadata["quantization"]
    assert "tensorrt" in quant["runs_on"]
    if not tensorrt_available():
        assert quant["calibration"]["gate_runtime"].startswith("onnxruntime")


def _cli(argv: list[str]) -> int:
    from edgesam.commands import quantize

    parser = argparse.ArgumentParser()
    quantize.add_parser(parser.add_subparsers())
    args = parser.parse_args(["quantize", *argv])
    return args.func(args)


def test_command_line_exit_codes(vit_t_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    calib = tmp_path / "calib"
    calib.mkdir()
    import cv2

    for i in range(3):
        cv2.imwrite(str(calib / f"{i}.png"), scene(seed=i, height=90, width=120)[0][..., ::-1])
    common = [str(vit_t_bundle), "--backend", "onnxruntime", "--calib", str(calib), "--no-search", "-q",
              "--recipe", "ort-int8"]
    assert _cli([*common, "-o", str(tmp_path / "strict"), "--min-iou", "1.0"]) == 1
    assert not (tmp_path / "strict").exists() and "no bundle was written" in capsys.readouterr().err
    assert _cli([*common, "-o", str(tmp_path / "recorded"), "--min-iou", "1.0", "--no-gate", "--allow-slow"]) == 0
    meta = load_bundle(tmp_path / "recorded").metadata["quantization"]
    assert meta["calibration"]["images"] == 2 and meta["calibration"]["heldout"] == 1
    assert not meta["accuracy"]["passed"]
    # --no-gate also skips the layer search: the recipe's layers all stay INT8, nothing is kept in float
    no_search = [a for a in common if a != "--no-search"]
    assert _cli([*no_search, "-o", str(tmp_path / "unsearched"), "--min-iou", "1.0", "--no-gate", "--allow-slow"]) == 0
    meta = load_bundle(tmp_path / "unsearched").metadata["quantization"]
    assert not meta["accuracy"]["passed"] and not meta["accuracy"].get("kept_float")
