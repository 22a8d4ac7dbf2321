"""``benchmarks/ort_profile.py``: MAC counts and kernel-time split from ONNX Runtime's profiler."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from ort_profile import graph_macs, kernel_split  # noqa: E402


def _model(path: Path) -> Path:
    """``x [B, 8, 6, 6]`` -> Conv 3x3 (8->4) -> ``[B*36, 4]`` -> MatMul ``[4, 5]`` -> Gemm -> Gelu.

    The Gemm computes ``A^T B^T`` with the constant ``A [5, 2]`` and ``B`` the MatMul output.
    """
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 8, 3, 3)).astype(np.float32), "wc"),
        numpy_helper.from_array(rng.standard_normal((4, 5)).astype(np.float32), "wm"),
        numpy_helper.from_array(rng.standard_normal((5, 2)).astype(np.float32), "wg"),
        numpy_helper.from_array(np.array([-1, 4], np.int64), "shape"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "wc"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Transpose", ["c"], ["t"], perm=[0, 2, 3, 1], name="nhwc"),
        helper.make_node("Reshape", ["t", "shape"], ["r"], name="flat"),
        helper.make_node("MatMul", ["r", "wm"], ["m"], name="matmul"),
        helper.make_node("Gemm", ["wg", "m"], ["g"], transA=1, transB=1, name="gemm"),
        helper.make_node("Gelu", ["g"], ["y"], name="gelu"),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 8, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), str(path))
    return path


@pytest.mark.parametrize("batch", [1, 3])
def test_graph_macs_counts_conv_matmul_and_transposed_gemm(tmp_path: Path, batch: int) -> None:
    path = _model(tmp_path / "m.onnx")
    x = np.zeros((batch, 8, 6, 6), np.float32)
    rows = batch * 36
    conv, matmul, gemm = rows * 4 * 8 * 9, rows * 4 * 5, 2 * rows * 5
    assert graph_macs(path, {"x": x}) == conv + matmul + gemm


def test_kernel_split_accounts_float_gemms_and_other_kernels(tmp_path: Path) -> None:
    path = _model(tmp_path / "m.onnx")
    ms = kernel_split(path, {"x": np.ones((64, 8, 6, 6), np.float32)}, threads=1, runs=2)
    assert set(ms) == {"integer", "qdq", "float_gemm", "other"}
    assert ms["integer"] == ms["qdq"] == 0.0  # nothing is quantized
    assert ms["float_gemm"] > 0.0 and ms["other"] > 0.0  # Conv/MatMul/Gemm vs transpose/Gelu
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # nothing written beside the model
