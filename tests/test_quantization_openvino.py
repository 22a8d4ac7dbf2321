"""OpenVINO INT8 (NNCF) bundles, and TensorRT builds where a GPU exists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bundle_fixtures import scene

from edgesam.bundle.format import load_bundle
from edgesam.predictor import SamPredictor
from edgesam.quantization import get_recipe, quantize_bundle

FAST = dict(calibration_images=6, heldout_images=1, prompts_per_image=4)


def test_openvino_int8_bundle_holds_ir_and_runs(vit_t_bundle: Path, tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    fp32 = vit_t_bundle
    result = quantize_bundle(fp32, tmp_path / "ov", backend="openvino", recipe=get_recipe("ov-int8").replace(**FAST),
                             min_mask_iou=0.5, search=False)  # fmt: skip
    bundle = load_bundle(result.path)
    assert bundle.metadata["models"]["encoder"] == "encoder.xml" and (result.path / "encoder.bin").is_file()
    quant = bundle.metadata["quantization"]
    assert quant["runs_on"] == ["openvino"] and quant["graphs"]["encoder"]["fake_quantize_ops"] > 20
    assert quant["calibration"]["gate_runtime"].startswith("openvino CPU")
    assert quant["float_precision"] in ("bf16", "fp32")  # what the gate measured the float parts at
    assert 0 < quant["graphs"]["encoder"]["int8_ops"] < quant["graphs"]["encoder"]["compute_ops"]
    assert quant["speed"]["reference"] == "openvino CPU f32"
    assert (result.path / "encoder.bin").stat().st_size < 0.4 * (fp32 / "encoder.onnx").stat().st_size

    image, boxes = scene()
    predictor = SamPredictor.from_bundle(result.path, backend="openvino", cache_dir=None, precision_hint="f32")
    reference = SamPredictor.from_bundle(fp32, backend="onnxruntime")
    for p in (predictor, reference):
        p.set_image(image)
    emb, ref = predictor.get_image_embedding(), reference.get_image_embedding()
    assert float((emb * ref).sum() / np.linalg.norm(emb) / np.linalg.norm(ref)) > 0.97
    masks, scores, _ = predictor.predict(box=boxes[0], multimask_output=False)
    assert masks.shape == (1, *image.shape[:2]) and np.isfinite(scores).all()
    assert not list(result.path.glob("*_cache"))  # the gate left no runtime cache in the bundle


def test_compact_folds_shape_subgraphs_without_changing_outputs(vit_t_bundle: Path) -> None:
    ov = pytest.importorskip("openvino")
    from edgesam.quantization.openvino_int8 import compact, read_model

    onnx_path = vit_t_bundle / "encoder.onnx"
    core = ov.Core()
    x = np.random.default_rng(0).standard_normal(tuple(read_model(onnx_path).input(0).get_shape())).astype(np.float32)

    def run(model: object) -> np.ndarray:
        compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        return compiled({0: x})[0]

    before = read_model(onnx_path)
    ops_before = len(before.get_ordered_ops())
    expected = run(before)
    after = compact(read_model(onnx_path))
    assert len(after.get_ordered_ops()) < ops_before
    assert not [op for op in after.get_ordered_ops() if op.get_type_name() == "ShapeOf"]
    np.testing.assert_array_equal(run(after), expected)


def test_save_ir_without_openvino_private_folding_warns_and_writes(
    vit_t_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("openvino")
    import sys

    from edgesam.quantization.openvino_int8 import read_model, save_ir

    model = read_model(vit_t_bundle / "encoder.onnx")
    ops = len(model.get_ordered_ops())
    monkeypatch.setitem(sys.modules, "openvino._offline_transformations", None)  # an OpenVINO without it
    with pytest.warns(RuntimeWarning, match="constant folding is unavailable"):
        xml, weights = save_ir(model, tmp_path, "encoder")
    assert xml.is_file() and weights.is_file()
    assert len(read_model(xml).get_ordered_ops()) == ops  # saved as it was, nothing folded
