"""Graph rewrites around ONNX Runtime's quantizer, on small real graphs exported from torch."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from edgesam.quantization.onnxruntime_int8 import quantize_onnx  # noqa: E402
from edgesam.quantization.ort_graph import activation_matmuls, fuse_gelu, prepare_model  # noqa: E402
from edgesam.quantization.recipes import get_recipe  # noqa: E402
from edgesam.quantization.sensitivity import rank_onnx_layers  # noqa: E402
from edgesam.quantization.tensorrt_int8 import check_explicit_quantization  # noqa: E402


class Block(torch.nn.Module):
    """Conv stem + tokens + a GELU MLP + one attention product: the encoder's op mix in miniature."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.fc1 = torch.nn.Linear(16, 32)
        self.act = torch.nn.GELU()
        self.fc2 = torch.nn.Linear(32, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.act(self.conv(x)).flatten(2).transpose(1, 2)  # [1, 64, 16]
        attn = (t @ t.transpose(1, 2)).softmax(-1)  # activation x activation
        return self.fc2(self.act(self.fc1(attn @ t)))


def _export(tmp: Path) -> Path:
    torch.manual_seed(0)
    path = tmp / "block.onnx"
    torch.onnx.export(Block().eval(), (torch.randn(1, 3, 8, 8),), str(path), input_names=["x"],
                      output_names=["y"], opset_version=17, dynamo=False)  # fmt: skip
    return path


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _feeds(n: int = 4) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [{"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)} for _ in range(n)]


def test_gelu_fusion_matches_the_exported_pattern(tmp_path: Path) -> None:
    src = _export(tmp_path)
    assert Counter(n.op_type for n in onnx.load(str(src)).graph.node)["Erf"] == 2
    prepared = prepare_model(src, tmp_path / "prepared.onnx", gelu=True)
    ops = Counter(n.op_type for n in onnx.load(str(prepared)).graph.node)
    assert ops["Gelu"] == 2 and ops["Erf"] == 0
    x = _feeds(1)[0]["x"]
    np.testing.assert_allclose(_run(prepared, x), _run(src, x), rtol=1e-5, atol=1e-6)
    assert fuse_gelu(onnx.load(str(prepared))) == 0  # nothing left to fuse


def test_ort_recipe_gives_integer_kernels_and_keeps_attention_float(tmp_path: Path) -> None:
    src = _export(tmp_path)
    recipe = get_recipe("ort-int8")
    result = quantize_onnx(src, tmp_path / "int8.onnx", _feeds(), recipe, workdir=tmp_path / "work")
    model = onnx.load(str(result.path))
    ops = Counter(n.op_type for n in model.graph.node)
    assert result.lowered_matmuls == 2 and ops["MatMulIntegerToFloat"] == 2
    assert ops["MatMul"] == 2  # the two attention products stay float
    assert set(result.excluded_nodes) == set(activation_matmuls(onnx.load(str(tmp_path / "work/prepared.onnx"))))
    assert not any(n.op_type == "Add" and "fc" in n.name for n in model.graph.node)  # biases folded in
    x = _feeds(1)[0]["x"]
    ref, out = _run(src, x), _run(result.path, x)
    cos = float((ref * out).sum() / np.linalg.norm(ref) / np.linalg.norm(out))
    assert cos > 0.99
    # lowering changes the kernels, not the arithmetic: same numbers as the plain Q/DQ graph
    plain = quantize_onnx(src, tmp_path / "qdq.onnx", _feeds(), recipe.replace(lower_matmuls=False),
                          workdir=tmp_path / "work")  # fmt: skip
    np.testing.assert_allclose(_run(plain.path, x), out, rtol=1e-3, atol=1e-4)


def test_tensorrt_recipe_is_a_valid_explicit_quantization_graph(tmp_path: Path) -> None:
    src = _export(tmp_path)
    trt = quantize_onnx(src, tmp_path / "trt.onnx", _feeds(), get_recipe("trt-int8"), workdir=tmp_path / "w1")
    assert check_explicit_quantization(onnx.load(str(trt.path))) > 0
    ort_int8 = quantize_onnx(src, tmp_path / "ort.onnx", _feeds(), get_recipe("ort-int8"), workdir=tmp_path / "w2")
    with pytest.raises(ValueError, match="zero point must be int8 0|non-standard ops"):
        check_explicit_quantization(onnx.load(str(ort_int8.path)))
    with pytest.raises(ValueError, match="no QuantizeLinear"):
        check_explicit_quantization(onnx.load(str(src)))


def test_sensitivity_ranks_every_quantized_layer(tmp_path: Path) -> None:
    src = _export(tmp_path)
    recipe = get_recipe("ort-int8").replace(lower_matmuls=False)
    result = quantize_onnx(src, tmp_path / "qdq.onnx", _feeds(), recipe, workdir=tmp_path / "work")
    ranking = rank_onnx_layers(tmp_path / "work/prepared.onnx", result.path, _feeds(2), result.quantized_nodes)
    assert sorted(n for n, _ in ranking) == sorted(result.quantized_nodes)
    scores = [s for _, s in ranking]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0
