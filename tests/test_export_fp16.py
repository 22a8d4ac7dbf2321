"""FP16-typed bundles for TensorRT: the graph conversion, the gate against fp32, the CLI.

Everything runs in ONNX Runtime on CPU (it executes float16 graphs, rounding every tensor to
float16 between ops); TensorRT builds the same files strongly typed on a GPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

from bundle_fixtures import tiny_model  # noqa: E402

from edgesam.bundle.format import METADATA_FILE  # noqa: E402
from edgesam.export import export_bundle, load_bundle  # noqa: E402
from edgesam.export.fp16 import FP32_OPS, convert_onnx_fp16  # noqa: E402

FLOAT, HALF = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16


@pytest.fixture(scope="module")
def fp32_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_bundle(tiny_model(), tmp_path_factory.mktemp("fp16") / "fp32")


def _types(model: onnx.ModelProto) -> dict[str, int]:
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.value_info, *g.input, *g.output]}
    types.update({i.name: i.data_type for i in g.initializer})
    return types


def test_graph_is_float16_except_fragile_ops_logits_and_io(fp32_bundle: Path, tmp_path: Path) -> None:
    bundle = load_bundle(fp32_bundle)
    for role in ("encoder", "decoder"):
        summary = convert_onnx_fp16(bundle.path(role), tmp_path / f"{role}.onnx")
        model = onnx.load(str(tmp_path / f"{role}.onnx"))
        onnx.checker.check_model(model)
        types = _types(model)
        assert all(v.type.tensor_type.elem_type == FLOAT for v in [*model.graph.input, *model.graph.output])
        assert any(i.data_type == HALF for i in model.graph.initializer)
        fragile = [n for n in model.graph.node if n.op_type in FP32_OPS]
        assert fragile, f"the {role} graph has LayerNorm/Softmax-like ops"
        for node in fragile:
            assert all(types.get(i, FLOAT) == FLOAT for i in node.input if i), (role, node.name)
        assert summary["fp16_nodes"] > summary["fp32_nodes"] > 0
        if role == "decoder":
            logits = set(summary["fp32_logit_nodes"])
            producers = {o: n for n in model.graph.node for o in n.output}
            last = producers["low_res_masks"]
            while last.op_type in ("Identity", "Cast"):
                assert types[last.input[0]] == FLOAT  # no float16 rounding on the way out
                last = producers[last.input[0]]
            assert last.name in logits and all(types[o] == FLOAT for o in last.output)
            matmuls = [n for n in model.graph.node if n.name in logits and n.op_type in ("MatMul", "Gemm", "Conv")]
            assert matmuls and all(types[o] == FLOAT for n in matmuls for o in n.output)
        # the original graph is refused a second conversion
        with pytest.raises(ValueError, match="already holds float16"):
            convert_onnx_fp16(tmp_path / f"{role}.onnx", tmp_path / "again.onnx")


def test_fp16_bundle_is_gated_recorded_and_runs(fp32_bundle: Path, tmp_path: Path) -> None:
    from edgesam.quantization.fp16 import fp16_bundle
    from edgesam.quantization.quantize import AlreadyQuantizedError
    from edgesam.runtimes.golden import check_golden
    from edgesam.runtimes.loader import load_backend
    from edgesam.runtimes.tensorrt_backend import default_precision

    result = fp16_bundle(fp32_bundle, tmp_path / "fp16", heldout_images=2, prompts_per_image=4)
    bundle = load_bundle(result.path)  # hashes verified
    meta = bundle.metadata
    assert meta["precision"] == "fp16" and meta["quantization"]["runs_on"] == ["tensorrt", "onnxruntime"]
    acc = meta["quantization"]["accuracy"]
    assert acc["passed"] and acc["mask_iou_mean"] == pytest.approx(result.report.mask_iou_mean)
    assert 0.97 <= acc["mask_iou_mean"] <= 1.0 and acc["embedding_cosine_mean"] > 0.999
    assert meta["quantization"]["golden"]["mask_iou"] >= 0.95
    assert default_precision(meta, "encoder") == default_precision(meta, "decoder") == "fp16"
    backend = load_backend(result.path, "onnxruntime")
    assert check_golden(backend).mask_iou == pytest.approx(meta["quantization"]["golden"]["mask_iou"])
    assert [p.name for p in tmp_path.iterdir()] == ["fp16"]  # no staging folder left behind
    with pytest.raises(AlreadyQuantizedError, match="fp16, not fp32"):
        fp16_bundle(result.path, tmp_path / "twice")
    with pytest.raises(FileExistsError, match="overwrite"):
        fp16_bundle(fp32_bundle, result.path)
    with pytest.raises(ValueError, match="outside the source bundle"):
        fp16_bundle(fp32_bundle, fp32_bundle / "inner")
    with pytest.raises(ValueError, match="roles must be"):
        fp16_bundle(fp32_bundle, tmp_path / "x", roles=("mask_decoder",))


def test_export_command_writes_a_gated_fp16_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgesam.cli import main

    out = tmp_path / "demo16"
    assert main(["export", "edgesam-demo", "-o", str(out), "--precision", "fp16"]) == 0
    printed = capsys.readouterr().out
    assert "fp16 vs fp32 (onnxruntime CPU): PASS" in printed
    meta = json.loads((out / METADATA_FILE).read_text())
    assert meta["precision"] == "fp16" and meta["quantization"]["accuracy"]["passed"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo16"]  # the fp32 staging bundle is gone
    assert main(["export", "edgesam-demo", "-o", str(out), "--precision", "fp16"]) == 2
    assert "exists; add --overwrite to replace it" in capsys.readouterr().err
    assert main(["export", "edgesam-demo", "-o", str(tmp_path / "b"), "--min-iou", "0.9"]) == 2
    assert "--min-iou applies to --precision fp16 only" in capsys.readouterr().err
    session = ort.InferenceSession(str(out / "encoder.onnx"), providers=["CPUExecutionProvider"])
    size = meta["image_size"]
    emb = session.run(None, {"image": np.zeros((1, 3, size, size), np.float32)})[0]
    assert emb.dtype == np.float32 and np.isfinite(emb).all()
