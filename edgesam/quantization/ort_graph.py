"""ONNX graph rewrites around ONNX Runtime's static quantizer (onnx + onnxruntime only).

Before quantizing (:func:`prepare_model`):

* ONNX Runtime's basic graph optimisation (constant folding, Constant nodes turned into
  initializers so that the quantizer sees weights and biases), with the MatMul+Add->Gemm
  fusion switched off so Linear layers stay MatMul + Add;
* the erf-GELU pattern the torch exporter writes (Div, Erf, Add, Mul, Mul) becomes one
  ``Gelu`` node (:func:`fuse_gelu`). ONNX Runtime would fuse it at load time, but in a QDQ
  graph each consumer of a quantized tensor gets its own DequantizeLinear, so the pattern no
  longer matches and GELU runs as five separate element-wise passes;
* symbolic shape inference.

After quantizing (:func:`lower_matmuls`): every ``DQ(x) x DQ(W) -> MatMul [-> Add(bias)]``
becomes ``MatMulIntegerToFloat(x_q, W_q, scales, zero points, bias)``: one integer GEMM with
the dequantisation and the bias folded in. ONNX Runtime's own QDQ fusion would do this, but
its earlier MatMul+Add->Gemm rewrite turns these node units into a float Gemm fed by
DequantizeLinear of the weights, i.e. an fp32 GEMM plus per-run weight dequantisation.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np

__all__ = [
    "activation_matmuls",
    "batched_weight_matmuls",
    "fuse_gelu",
    "lower_matmuls",
    "name_nodes",
    "prepare_model",
    "quantizable_nodes",
]

_MS = "com.microsoft"


def _scalar(inits: dict[str, np.ndarray], name: str) -> float | None:
    value = inits.get(name)
    return None if value is None or value.size != 1 else float(value.reshape(()))


def _consumers(graph) -> dict[str, list]:  # type: ignore[no-untyped-def]
    out: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            out.setdefault(name, []).append(node)
    return out


def _ensure_ms_opset(model) -> None:  # type: ignore[no-untyped-def]
    from onnx import helper

    if not any(op.domain == _MS for op in model.opset_import):
        model.opset_import.append(helper.make_opsetid(_MS, 1))


def name_nodes(model) -> None:  # type: ignore[no-untyped-def]
    """Give every unnamed node a unique name (``<op_type>_<index>``); names are used for exclusions."""
    seen = {n.name for n in model.graph.node if n.name}
    for i, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in seen:
                name += "_"
            node.name = name
            seen.add(name)


def fuse_gelu(model) -> int:  # type: ignore[no-untyped-def]
    """Replace ``x * 0.5 * (1 + erf(x / sqrt(2)))`` patterns by one ``Gelu`` node, in place.

    Both association orders the exporters write are matched; the constants must be
    initializers (run constant folding first). Returns the number of fused patterns.
    """
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    users = _consumers(graph)
    producer = {o: n for n in graph.node for o in n.output}

    def only_user(tensor: str, op_type: str):  # type: ignore[no-untyped-def]
        found = users.get(tensor, [])
        return found[0] if len(found) == 1 and found[0].op_type == op_type else None

    def other_input(node, known: str) -> str | None:  # type: ignore[no-untyped-def]
        rest = [i for i in node.input if i != known]
        return rest[0] if len(rest) == 1 else None

    opset = max((op.version for op in model.opset_import if op.domain in ("", "ai.onnx")), default=0)
    replaced: dict[int, object] = {}
    removed: set[int] = set()
    for div in graph.node:
        if div.op_type != "Div" or abs((_scalar(inits, div.input[1]) or 0.0) - 2**0.5) > 1e-3:
            continue
        x = div.input[0]
        erf = only_user(div.output[0], "Erf")
        add = erf and only_user(erf.output[0], "Add")
        if not add or _scalar(inits, other_input(add, erf.output[0]) or "") != 1.0:
            continue
        mul = only_user(add.output[0], "Mul")
        partner = mul and other_input(mul, add.output[0])
        if not partner:
            continue
        if partner == x:  # (x * (1 + erf)) * 0.5
            last = only_user(mul.output[0], "Mul")
            if not last or _scalar(inits, other_input(last, mul.output[0]) or "") != 0.5:
                continue
            chain = [div, erf, add, mul, last]
        else:  # (x * 0.5) * (1 + erf)
            half = producer.get(partner)
            if half is None or half.op_type != "Mul" or x not in half.input or len(users[partner]) != 1:
                continue
            if _scalar(inits, other_input(half, x) or "") != 0.5:
                continue
            last, chain = mul, [half, div, erf, add, mul]
        name = (div.name.rsplit("/", 1)[0] + "/Gelu") if "/" in div.name else f"{div.name}_gelu"
        if opset >= 20:
            gelu = helper.make_node("Gelu", [x], [last.output[0]], name=name)
        else:
            gelu = helper.make_node("Gelu", [x], [last.output[0]], name=name, domain=_MS)
        replaced[id(div)] = gelu
        removed.update(id(n) for n in chain if n is not div)
    if replaced:
        nodes = [replaced.get(id(n), n) for n in graph.node if id(n) not in removed]
        del graph.node[:]
        graph.node.extend(nodes)  # type: ignore[arg-type]
        if opset < 20:
            _ensure_ms_opset(model)
    return len(replaced)


def prepare_model(src: str | os.PathLike[str], dst: str | os.PathLike[str], *, gelu: bool) -> Path:
    """Write ``src`` optimised for quantization to ``dst`` (see the module docstring)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = Path(dst)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.log_severity_level = 3  # the unused-initializer notices after folding are expected
    options.optimized_model_filepath = str(out)
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"], disabled_optimizers=["MatMulAddFusion"])
    model = onnx.load(str(out))
    name_nodes(model)
    if gelu:
        fuse_gelu(model)
    del model.graph.value_info[:]
    onnx.save(model, str(out))
    try:
        quant_pre_process(str(out), str(out), skip_optimization=True)
    except Exception:  # noqa: BLE001 - symbolic inference gives up on some graphs; ONNX's is enough then
        model = onnx.shape_inference.infer_shapes(onnx.load(str(out)))
        onnx.save(model, str(out))
    return out


def _initializer_names(model) -> set[str]:  # type: ignore[no-untyped-def]
    return {i.name for i in model.graph.initializer}


def activation_matmuls(model) -> list[str]:  # type: ignore[no-untyped-def]
    """Names of MatMul nodes whose second input is not a weight (attention ``q @ k^T``, ``attn @ v``)."""
    inits = _initializer_names(model)
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] not in inits]


def batched_weight_matmuls(model) -> list[str]:  # type: ignore[no-untyped-def]
    """Names of MatMul nodes with a constant weight of rank other than 2 (the factored decoder's
    per-head products): ONNX Runtime's integer MatMul kernels reject per-channel scales on them."""
    rank = {i.name: len(i.dims) for i in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and rank.get(n.input[1], 2) != 2]


def quantizable_nodes(model, op_types: Iterable[str], *, activation_matmuls_too: bool = False) -> list[str]:  # type: ignore[no-untyped-def]
    """Names of the nodes a recipe would quantize, in graph order."""
    wanted = set(op_types)
    skip = set(batched_weight_matmuls(model))
    if not activation_matmuls_too:
        skip |= set(activation_matmuls(model))
    return [n.name for n in model.graph.node if n.op_type in wanted and n.name not in skip]


def lower_matmuls(model) -> int:  # type: ignore[no-untyped-def]
    """Turn Q/DQ MatMuls with constant int8 weights into ``MatMulIntegerToFloat``, in place.

    Only MatMuls without a QuantizeLinear on their output are lowered (a float output is what
    MatMulIntegerToFloat produces). A following ``Add`` of a 1-D constant is folded in as the
    bias. Returns the number of lowered MatMuls.
    """
    from onnx import helper

    graph = model.graph
    inits = _initializer_names(model)
    producer = {o: n for n in graph.node for o in n.output}
    users = _consumers(graph)
    init_dims = {i.name: list(i.dims) for i in graph.initializer}
    outputs = {o.name for o in graph.output}
    replaced: dict[int, object] = {}
    removed: set[int] = set()
    for mm in graph.node:
        if mm.op_type != "MatMul":
            continue
        da, dw = producer.get(mm.input[0]), producer.get(mm.input[1])
        if not (da and dw and da.op_type == "DequantizeLinear" and dw.op_type == "DequantizeLinear"):
            continue
        if dw.input[0] not in inits or len(init_dims.get(dw.input[0], [])) != 2:
            continue
        axis = next((a.i for a in dw.attribute if a.name == "axis"), 1)
        if len(init_dims.get(dw.input[1], [])) == 1 and init_dims[dw.input[1]][0] > 1 and axis not in (1, -1):
            continue
        found = users.get(mm.output[0], [])
        if any(u.op_type == "QuantizeLinear" for u in found):
            continue
        out, bias = mm.output[0], ""
        n_out = init_dims[dw.input[0]][1]
        if len(found) == 1 and found[0].op_type == "Add" and mm.output[0] not in outputs:
            add = found[0]
            other = [i for i in add.input if i != mm.output[0]]
            if len(other) == 1 and other[0] in inits and init_dims.get(other[0]) == [n_out]:
                out, bias = add.output[0], other[0]
                removed.add(id(add))
        inputs = [da.input[0], dw.input[0], da.input[1], dw.input[1],
                  da.input[2] if len(da.input) > 2 else "", dw.input[2] if len(dw.input) > 2 else "", bias]  # fmt: skip
        while inputs and not inputs[-1]:
            inputs.pop()
        replaced[id(mm)] = helper.make_node("MatMulIntegerToFloat", inputs, [out], name=f"{mm.name}_int8", domain=_MS)
    if not replaced:
        return 0
    nodes = [replaced.get(id(n), n) for n in graph.node if id(n) not in removed]
    used = {i for n in nodes for i in n.input} | {o.name for o in graph.output}
    nodes = [n for n in nodes if not (n.op_type == "DequantizeLinear" and n.output[0] not in used)]
    del graph.node[:]
    graph.node.extend(nodes)  # type: ignore[arg-type]
    used = {i for n in nodes for i in n.input}
    kept = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    _ensure_ms_opset(model)
    return len(replaced)

