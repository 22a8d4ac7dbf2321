"""TensorRT explicit-quantization rules on small real ONNX graphs (checked, then run in ONNX Runtime)."""

from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgesam.quantization.tensorrt_int8 import check_explicit_quantization  # noqa: E402


def _qdq_conv(*, axis: int = 0, n_scales: int = 8, constant_scales: bool = False,
              act_scale: np.ndarray | None = None, matmul: bool = False, w_axis_for_matmul: int = 1) -> onnx.ModelProto:
    """x [1,4,6,6] -> Q/DQ (per tensor) -> Conv with Q/DQ per-channel weights [8,4,3,3] (or a MatMul [6,8])."""
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(6, 8) if matmul else (8, 4, 3, 3)).astype(np.float32)
    w_scale = np.full(n_scales, 0.02, np.float32)
    a_scale = np.array(0.05, np.float32) if act_scale is None else act_scale
    tensors = {"w": weight, "w_scale": w_scale, "w_zero": np.zeros(n_scales, np.int8),
               "a_scale": a_scale, "a_zero": np.zeros(a_scale.shape, np.int8)}
    nodes, inits = [], []
    for name, value in tensors.items():
        if constant_scales and name != "w":
            nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value, name)))
        else:
            inits.append(numpy_helper.from_array(value, name))
    nodes += [
        helper.make_node("QuantizeLinear", ["x", "a_scale", "a_zero"], ["xq"], name="x_q"),
        helper.make_node("DequantizeLinear", ["xq", "a_scale", "a_zero"], ["xd"], name="x_dq"),
        helper.make_node("QuantizeLinear", ["w", "w_scale", "w_zero"], ["wq"], name="w_q",
                         axis=w_axis_for_matmul if matmul else axis),
        helper.make_node("DequantizeLinear", ["wq", "w_scale", "w_zero"], ["wd"], name="w_dq",
                         axis=w_axis_for_matmul if matmul else axis),
        helper.make_node("MatMul", ["xd", "wd"], ["y"], name="mm") if matmul
        else helper.make_node("Conv", ["xd", "wd"], ["y"], name="conv", pads=[1, 1, 1, 1]),
    ]  # fmt: skip
    y_shape = [1, 4, 6, 8] if matmul else [1, 8, 6, 6]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)], inits)  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _runs(model: onnx.ModelProto) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": np.ones((1, 4, 6, 6), np.float32)})[0]


def test_valid_graphs_pass_with_scales_in_initializers_or_constant_nodes() -> None:
    for model in (_qdq_conv(), _qdq_conv(constant_scales=True), _qdq_conv(matmul=True, n_scales=8)):
        onnx.checker.check_model(model)
        assert check_explicit_quantization(model) == 4
        assert np.isfinite(_runs(model)).all()
    np.testing.assert_array_equal(_runs(_qdq_conv()), _runs(_qdq_conv(constant_scales=True)))


def test_per_channel_axis_must_be_the_output_channel_axis() -> None:
    wrong = _qdq_conv(axis=1, n_scales=4)  # per input channel: valid ONNX, not what TensorRT wants
    assert np.isfinite(_runs(wrong)).all()
    with pytest.raises(ValueError, match="w_q: per-channel axis 1, but TensorRT needs the output-channel axis 0 for Conv"):  # noqa: E501
        check_explicit_quantization(wrong)
    wrong_mm = _qdq_conv(matmul=True, n_scales=6, w_axis_for_matmul=0)
    onnx.checker.check_model(wrong_mm)
    with pytest.raises(ValueError, match="axis 0, but TensorRT needs the output-channel axis 1 for MatMul"):
        check_explicit_quantization(wrong_mm)


def test_scale_count_and_activation_scales_are_checked() -> None:
    with pytest.raises(ValueError, match="w_q: 3 scales for 8 channels on axis 0"):
        check_explicit_quantization(_qdq_conv(n_scales=3))
    per_channel_act = _qdq_conv(act_scale=np.full(4, 0.05, np.float32))
    per_channel_act.graph.node[0].attribute.append(helper.make_attribute("axis", 1))
    per_channel_act.graph.node[1].attribute.append(helper.make_attribute("axis", 1))
    assert np.isfinite(_runs(per_channel_act)).all()
    with pytest.raises(ValueError, match="x_q: per-channel scales on an activation"):
        check_explicit_quantization(per_channel_act)


def test_zero_points_and_scales_must_be_symmetric_and_positive() -> None:
    model = _qdq_conv()
    for init in model.graph.initializer:
        if init.name == "w_zero":
            init.CopyFrom(numpy_helper.from_array(np.full(8, 3, np.int8), "w_zero"))
        if init.name == "a_scale":
            init.CopyFrom(numpy_helper.from_array(np.array(-1.0, np.float32), "a_scale"))
    with pytest.raises(ValueError, match=r"x_q: scale must be a positive constant.*w_q: zero point must be int8 0"):
        check_explicit_quantization(model)
