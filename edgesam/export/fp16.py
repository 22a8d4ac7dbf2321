"""FP16-typed ONNX graphs for strongly typed TensorRT builds (TensorRT 11 has no FP16 flag).

:func:`convert_onnx_fp16` rewrites a float32 bundle graph so its tensors are float16, except:

* the numerically fragile op types in :data:`FP32_OPS` -- LayerNormalization, Softmax, and the
  pieces of the decomposed LayerNorm2d (ReduceMean, Pow, Sqrt: squares of activations overflow
  float16's 65504) -- which keep float32 inputs and outputs (Casts around them);
* the final mask logits: every node between the last matrix product (MatMul / Gemm / Conv /
  ConvTranspose) and the ``low_res_masks`` output, that product included, runs in float32;
* the graph inputs and outputs, which stay float32, so a bundle's I/O contract is unchanged.

The result is standard ONNX: TensorRT 10.x and 11.x build it strongly typed (the graph says
which layer runs in which type), and ONNX Runtime runs it on CPU (float16 ops it lacks a CPU
kernel for run in float32 between float16 casts, so tensors are still rounded to float16
between ops), which is how its fidelity is measured here (:mod:`edgesam.quantization.fp16`).

Needs ``onnx`` and ``onnxruntime`` (its ``transformers.float16`` converter); no torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

__all__ = ["FP32_OPS", "MATMUL_OPS", "convert_onnx_fp16", "mask_logit_nodes"]

#: Op types kept in float32 in every converted graph.
FP32_OPS: tuple[str, ...] = ("LayerNormalization", "Softmax", "ReduceMean", "Pow", "Sqrt")
#: Matrix products: the last one before an output produces the logits.
MATMUL_OPS: tuple[str, ...] = ("MatMul", "Gemm", "Conv", "ConvTranspose")


def _name_nodes(graph: Any) -> None:
    seen: set[str] = set()
    for i, node in enumerate(graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_fp16conv_{i}"
        seen.add(node.name)


def _topological_sort(graph: Any) -> None:
    """Reorder ``graph.node`` so every node follows its producers (the converter appends its
    Casts at the end; TensorRT's parser and the ONNX checker need the order)."""
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        rest = []
        for node in pending:
            if all(i in available for i in node.input):
                ordered.append(node)
                available.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise ValueError(f"the converted graph has a cycle or a dangling input at {rest[0].name}")
        pending = rest
    copies = [type(n)() for n in ordered]
    for copy, node in zip(copies, ordered):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)


#: Ops whose inputs after the first are shapes, indices or sizes (not followed back from the logits).
_DATA_FIRST = ("Reshape", "Expand", "Tile", "Slice", "Pad", "Resize", "Unsqueeze", "Squeeze", "Gather",
               "Transpose", "Flatten", "Split")  # fmt: skip
#: Ops that compute shapes: the walk back from the logits stops there.
_SHAPE_OPS = ("Shape", "ConstantOfShape", "Size", "Constant", "Range")


def mask_logit_nodes(graph: Any, outputs: Sequence[str]) -> list[str]:
    """Names of the nodes from the last matrix product up to each of ``outputs`` (product included).

    Walks back from each output along the data path (the first input of reshaping ops, every
    input of elementwise ones); it stops at a :data:`MATMUL_OPS` node (kept, its own inputs not
    followed), at shape computations and at graph inputs and constants.
    """
    producer = {out: node for node in graph.node for out in node.output}
    kept: list[str] = []
    seen: set[str] = set()
    stack = [producer[o] for o in outputs if o in producer]
    while stack:
        node = stack.pop()
        if node.name in seen:
            continue
        seen.add(node.name)
        kept.append(node.name)
        if node.op_type in MATMUL_OPS:
            continue
        inputs = node.input[:1] if node.op_type in _DATA_FIRST else node.input
        stack.extend(producer[i] for i in inputs if i in producer and producer[i].op_type not in _SHAPE_OPS)
    return kept


def _cast_to(node: Any) -> int | None:
    return next((a.i for a in node.attribute if a.name == "to"), None) if node.op_type == "Cast" else None


def _drop_round_trips(model: Any) -> int:
    """Remove float32 -> float16 -> float32 Cast pairs the converter puts between two float32
    nodes (they would round the kept-float32 tensors to float16). Returns the pairs removed."""
    import onnx

    graph = model.graph
    types = {v.name: v.type.tensor_type.elem_type
             for v in [*onnx.shape_inference.infer_shapes(model).graph.value_info, *graph.input]}  # fmt: skip
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    drop: set[int] = set()
    rename: dict[str, str] = {}
    for node in graph.node:
        if _cast_to(node) != onnx.TensorProto.FLOAT16 or types.get(node.input[0]) != onnx.TensorProto.FLOAT:
            continue
        users = consumers.get(node.output[0], [])
        if not users or node.output[0] in outputs:
            continue
        if not all(_cast_to(u) == onnx.TensorProto.FLOAT for u in users):
            continue
        drop.add(id(node))
        for user in users:
            if user.output[0] in outputs:  # keep the output's name: the Cast pair becomes an Identity
                user.op_type = "Identity"
                del user.attribute[:]
                user.input[0] = node.input[0]
            else:
                drop.add(id(user))
                rename[user.output[0]] = node.input[0]
    for node in graph.node:
        for k, name in enumerate(node.input):
            if name in rename:
                node.input[k] = rename[name]
    kept = [n for n in graph.node if id(n) not in drop]
    removed = len(graph.node) - len(kept)
    copies = [type(n)() for n in kept]
    for copy, node in zip(copies, kept):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)
    return removed


def convert_onnx_fp16(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    fp32_ops: Sequence[str] = FP32_OPS,
    fp32_outputs: Sequence[str] = ("low_res_masks",),
    fp32_nodes: Sequence[str] = (),
) -> dict[str, Any]:
    """Write an FP16-typed copy of the float32 graph ``src`` to ``dst``.

    Args:
        src: float32 ONNX file (a bundle's ``encoder.onnx`` or ``decoder.onnx``).
        dst: file to write (a temporary name is written first, then renamed).
        fp32_ops: op types kept in float32 (default :data:`FP32_OPS`).
        fp32_outputs: graph outputs whose final logits (:func:`mask_logit_nodes`) stay float32;
            names the graph lacks are ignored.
        fp32_nodes: more node names to keep in float32.

    Returns:
        A JSON-serialisable summary: ``fp16_nodes``/``fp32_nodes`` (compute nodes, not counting
        constants and casts), ``fp32_ops`` and ``fp32_logit_nodes``.

    Raises:
        ValueError: ``src`` is not a float32 graph (already float16, or Q/DQ quantized).
    """
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    graph = model.graph
    if any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in graph.node):
        raise ValueError(f"{src} is a Q/DQ (INT8) graph; convert the fp32 bundle to FP16 instead")
    if any(i.data_type == onnx.TensorProto.FLOAT16 for i in graph.initializer):
        raise ValueError(f"{src} already holds float16 tensors; convert the fp32 bundle instead")
    _name_nodes(graph)
    present = {o.name for o in graph.output}
    logits = mask_logit_nodes(graph, [o for o in fp32_outputs if o in present])
    block_nodes = sorted(set(logits) | set(fp32_nodes))
    converted = convert_float_to_float16(model, keep_io_types=True, op_block_list=list(fp32_ops),
                                         node_block_list=block_nodes, disable_shape_infer=False)  # fmt: skip
    _topological_sort(converted.graph)
    _drop_round_trips(converted)
    onnx.checker.check_model(converted)
    compute = [n for n in graph.node if n.op_type not in ("Constant", "Cast", "Identity")]
    fp32 = [n for n in compute if n.op_type in fp32_ops or n.name in block_nodes]
    out = Path(dst)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        onnx.save(converted, str(tmp))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return {
        "fp16_nodes": len(compute) - len(fp32),
        "fp32_nodes": len(fp32),
        "fp32_ops": list(fp32_ops),
        "fp32_logit_nodes": sorted(logits),
    }
