"""Per-layer quantization sensitivity, and the search that keeps sensitive layers in float.

Sensitivity of a quantized layer = the relative error it *adds*. For Q/DQ ONNX graphs it is
measured exactly, with a float twin of every layer inside the quantized graph
(:func:`rank_onnx_layers`); for OpenVINO models, as the relative L2 error of the layer's
output minus that of its input (quantized vs float model, same image). Either way ranking
all layers costs one or two inferences per sample, not one quantization per layer.

:func:`search_float_layers` is the earlier fallback: it keeps the top-ranked layers in float,
doubling their number until the accuracy gate passes, so it can keep up to twice the layers
needed. ``quantize_bundle`` now uses :func:`edgesam.quantization.search.fewest_float_layers`
(doubling, then bisection); this one stays for comparison (tests, benchmarks).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from edgesam.quantization.accuracy import AccuracyReport

__all__ = ["rank_onnx_layers", "rank_openvino_layers", "search_float_layers"]


class _ErrorSums:
    """Accumulates ``sum((q - f)^2)`` and ``sum(f^2)`` per tensor over samples."""

    def __init__(self) -> None:
        self.diff: dict[str, float] = {}
        self.ref: dict[str, float] = {}

    def add(self, name: str, quantized: np.ndarray, reference: np.ndarray) -> None:
        q, f = np.asarray(quantized, np.float64), np.asarray(reference, np.float64)
        if q.shape != f.shape:
            return
        self.diff[name] = self.diff.get(name, 0.0) + float(np.square(q - f).sum())
        self.ref[name] = self.ref.get(name, 0.0) + float(np.square(f).sum())

    def rel(self, name: str) -> float:
        if name not in self.diff:
            return 0.0
        return float(np.sqrt(self.diff[name] / max(self.ref[name], 1e-30)))


def _rank(layers: Mapping[str, tuple[str, str]], sums: _ErrorSums) -> list[tuple[str, float]]:
    """``(layer, error(out) - error(in))`` pairs, largest first (``layers``: name -> (in, out) keys)."""
    scores = [(name, sums.rel(out) - sums.rel(inp)) for name, (inp, out) in layers.items()]
    return sorted(scores, key=lambda kv: kv[1], reverse=True)


def _float_twin(node: Any, float_node: Any, float_inits: Mapping[str, Any], producer: Mapping[str, Any]) -> Any | None:
    """A copy of quantized ``node`` fed with float tensors: the activations before their
    QuantizeLinear, and ``<name>__float`` copies of the float model's weights and biases."""
    from onnx import helper

    inputs: list[str] = []
    for name, float_name in zip(node.input, float_node.input):
        if float_name in float_inits:
            inputs.append(f"{float_name}__float")
            continue
        dq = producer.get(name)
        q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
        if dq is not None and dq.op_type == "DequantizeLinear" and (q is None or q.op_type != "QuantizeLinear"):
            return None  # a dequantized tensor whose float source is unknown
        inputs.append(q.input[0] if q is not None else name)
    twin = helper.make_node(node.op_type, inputs, [f"{node.output[0]}__float_twin"], name=f"{node.name}__float_twin",
                            domain=node.domain)  # fmt: skip
    twin.attribute.extend(node.attribute)
    return twin


def rank_onnx_layers(
    float_model: str | Path,
    qdq_model: str | Path,
    feeds: Sequence[Mapping[str, np.ndarray]],
    candidates: Sequence[str],
) -> list[tuple[str, float]]:
    """Rank the quantized nodes of a Q/DQ ONNX graph by the error they add, largest first.

    Every candidate gets a float twin in the Q/DQ graph: the same op fed with the float
    tensors its Q/DQ inputs came from (the activation before QuantizeLinear, the original
    float weight and bias). The relative L2 distance between the two outputs, in the same
    run, is the error that quantizing this one layer adds, whatever happened upstream.

    Args:
        float_model: the float graph the quantizer started from (same node names; weights).
        qdq_model: its Q/DQ version (not lowered: the quantized nodes keep their names).
        feeds: a few samples (1-2 are enough).
        candidates: names of the quantized nodes to rank.

    Returns:
        ``[(node name, relative error it adds)]``, sorted by decreasing error.
    """
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper

    base = onnx.load(str(float_model))
    float_nodes = {n.name: n for n in base.graph.node}
    float_inits = {i.name: i for i in base.graph.initializer}
    model = onnx.load(str(qdq_model))
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    layers: dict[str, tuple[str, str]] = {}
    twins, copied = [], {}
    wanted = set(candidates)
    for node in list(graph.node):
        if node.name not in wanted or node.name not in float_nodes:
            continue
        twin = _float_twin(node, float_nodes[node.name], float_inits, producer)
        if twin is None:
            continue
        twins.append(twin)
        layers[node.name] = (twin.output[0], node.output[0])
        for name in float_nodes[node.name].input:
            if name in float_inits and name not in copied:
                copied[name] = onnx.TensorProto()
                copied[name].CopyFrom(float_inits[name])
                copied[name].name = f"{name}__float"
    graph.initializer.extend(copied.values())
    graph.node.extend(twins)  # appended at the end: their inputs all exist by then
    graph.output.extend(helper.make_tensor_value_info(t, TensorProto.FLOAT, None) for pair in layers.values()
                        for t in pair)  # fmt: skip
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC  # keep Q/DQ as written
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    out_names = [o.name for o in session.get_outputs()]
    sums = _ErrorSums()
    for feed in feeds:
        values = dict(zip(out_names, session.run(None, dict(feed))))
        for name, (reference, quantized) in layers.items():
            sums.add(name, values[quantized], values[reference])
    return sorted(((name, sums.rel(name)) for name in layers), key=lambda kv: kv[1], reverse=True)


def _source(output: Any, known: set[str]) -> Any:
    """Walk back from an op input through FakeQuantize/Convert/SmoothQuant to a float-model tensor."""
    node = output.get_node()
    while node.get_friendly_name() not in known and node.get_input_size() > 0:
        output = node.input_value(0)
        node = output.get_node()
    return output


def rank_openvino_layers(
    float_model: Any, int8_model: Any, feeds: Sequence[Mapping[str, np.ndarray]], candidates: Sequence[str]
) -> list[tuple[str, float]]:
    """Rank the quantized ops of an NNCF model, most sensitive first (names as in the ONNX graph).

    Args:
        float_model, int8_model: ``openvino.Model`` before and after ``nncf.quantize``.
        feeds: a few samples (input name -> array).
        candidates: ONNX node names of Conv/MatMul layers (OpenVINO appends ``/WithoutBiases``
            to convolutions with a bias; both spellings are matched).
    """
    import openvino as ov

    core = ov.Core()
    float_model, int8_model = float_model.clone(), int8_model.clone()
    fops = {op.get_friendly_name(): op for op in float_model.get_ordered_ops()}
    qops = {op.get_friendly_name(): op for op in int8_model.get_ordered_ops()}
    pairs: dict[str, tuple[tuple[Any, Any], tuple[Any, Any]]] = {}
    for name in candidates:
        key = next((k for k in (name, f"{name}/WithoutBiases") if k in qops and k in fops), None)
        if key is None:
            continue
        q_in = _source(qops[key].input_value(0), set(fops))
        src = q_in.get_node().get_friendly_name()
        if src not in fops:
            continue
        f_in = fops[src].output(q_in.get_index())
        pairs[name] = ((f_in, q_in), (fops[key].output(0), qops[key].output(0)))
    tensors: dict[str, tuple[Any, Any]] = {}
    layers: dict[str, tuple[str, str]] = {}
    for name, ((f_in, q_in), (f_out, q_out)) in pairs.items():
        tin = f"{f_in.get_node().get_friendly_name()}:{f_in.get_index()}"
        tensors[tin], tensors[f"{name}:out"] = (f_in, q_in), (f_out, q_out)
        layers[name] = (tin, f"{name}:out")
    names = list(tensors)
    first_f, first_q = len(float_model.outputs), len(int8_model.outputs)
    float_model.add_outputs([tensors[n][0] for n in names])
    int8_model.add_outputs([tensors[n][1] for n in names])
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    f_req = core.compile_model(float_model, "CPU", config).create_infer_request()
    q_req = core.compile_model(int8_model, "CPU", config).create_infer_request()
    sums = _ErrorSums()
    for feed in feeds:
        f_res, q_res = f_req.infer(dict(feed)), q_req.infer(dict(feed))
        for i, n in enumerate(names):  # added outputs follow the model's own, in order
            sums.add(n, np.asarray(q_res[first_q + i]), np.asarray(f_res[first_f + i]))
    return _rank(layers, sums)


def search_float_layers(
    ranking: Sequence[tuple[str, float]],
    build: Callable[[tuple[str, ...]], Any],
    gate: Callable[[Any], AccuracyReport],
    *,
    first: int = 1,
    on_step: Callable[[str], None] | None = None,
) -> tuple[Any, AccuracyReport]:
    """Keep the ``k`` most sensitive layers in float, ``k = first, 2*first, ...``, until the gate passes.

    Args:
        ranking: ``[(layer, sensitivity)]``, most sensitive first.
        build: quantizes with the given layers kept in float; returns the candidate.
        gate: measures a candidate.
        first: layers kept in the first step.
        on_step: called with a progress line after every step.

    Returns:
        ``(candidate, report)`` of the first passing step, or of the last step (every layer
        float) when none passes; ``report.kept_float`` and ``report.search`` describe the steps.
    """
    names = [name for name, _ in ranking]
    steps: list[dict[str, Any]] = []
    k = max(1, first)
    while True:
        kept = tuple(names[: min(k, len(names))])
        candidate = build(kept)
        report = gate(candidate)
        steps.append({"kept_float": len(kept), "mask_iou_mean": report.mask_iou_mean,
                      "embedding_cosine_mean": report.embedding_cosine_mean})  # fmt: skip
        if on_step is not None:
            on_step(f"kept {len(kept)} layer(s) in float: mean mask IoU {report.mask_iou_mean:.4f}")
        if report.passed or len(kept) >= len(names):
            return candidate, replace(report, kept_float=kept, search=tuple(steps))
        k *= 2
