"""What ONNX Runtime's CPU kernels spend their time on, and the best a graph could do here.

* :func:`gemm_peaks`: this machine's fp32 and int8 GEMM throughput (ONNX Runtime MatMul /
  MatMulInteger on 2048^3);
* :func:`graph_macs`: multiply-accumulates of a graph's MatMul/Gemm/Conv nodes at given inputs
  (shapes from an unoptimised profiled run, so dynamic shapes are fine);
* :func:`kernel_split`: kernel time in integer GEMM/conv kernels, Quantize/Dequantize, float
  GEMM/conv kernels and everything else (the element-wise and data-movement
  work: GELU, LayerNorm, softmax, adds, transposes), from ONNX Runtime's own profiler.

A ceiling follows from them: even with every GEMM at the measured peak, a graph cannot run faster
than ``MACs / peak + the time of the other kernels``, which ONNX Runtime runs one by one, unfused.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

INTEGER_KERNELS = ("MatMulIntegerToFloat", "QLinearConv", "QLinearMatMul", "MatMulInteger", "ConvInteger", "QGemm")
QDQ_KERNELS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear")
FLOAT_GEMM_KERNELS = ("MatMul", "FusedMatMul", "Gemm", "FusedGemm", "Conv", "FusedConv", "NchwcConv")


def gemm_peaks(threads: int, size: int = 2048, runs: int = 5) -> dict[str, float]:
    """Best-of-``runs`` GOP/s of ONNX Runtime fp32 MatMul and int8 MatMulInteger on ``size``^3."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    def model(op: str, dtype: int, wdtype: int) -> bytes:
        graph = helper.make_graph(
            [helper.make_node(op, ["a", "b"], ["y"])], "g",
            [helper.make_tensor_value_info("a", dtype, [size, size]), helper.make_tensor_value_info("b", wdtype, [size, size])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT if op == "MatMul" else TensorProto.INT32, [size, size])],
        )  # fmt: skip
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()

    rng = np.random.default_rng(0)
    cases = {
        "fp32": (model("MatMul", TensorProto.FLOAT, TensorProto.FLOAT),
                 {"a": rng.standard_normal((size, size), np.float32), "b": rng.standard_normal((size, size), np.float32)}),
        "int8": (model("MatMulInteger", TensorProto.UINT8, TensorProto.INT8),
                 {"a": rng.integers(0, 255, (size, size), dtype=np.uint8), "b": rng.integers(-127, 127, (size, size), dtype=np.int8)}),
    }  # fmt: skip
    out: dict[str, float] = {}
    for name, (blob, feeds) in cases.items():
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
        session.run(None, feeds)
        best = float("inf")
        for _ in range(runs):
            start = time.perf_counter()
            session.run(None, feeds)
            best = min(best, time.perf_counter() - start)
        out[name] = 2 * size**3 / best / 1e9
    return out


def _profile(onnx_path: Path, feeds: Mapping[str, np.ndarray], threads: int, runs: int, optimize: bool) -> list[dict[str, Any]]:
    """ONNX Runtime's per-node kernel events of ``runs`` runs after one warm-up run."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.gettempdir()) / "edgesam-kernel-profile")  # not in the bundle
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    for _ in range(runs + 1):
        session.run(None, dict(feeds))
    trace = Path(session.end_profiling())
    events = [e for e in json.loads(trace.read_text()) if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    trace.unlink()
    return events[len(events) // (runs + 1):]  # drop the warm-up run


def graph_macs(onnx_path: Path, feeds: Mapping[str, np.ndarray]) -> int:
    """Multiply-accumulates of the MatMul, Gemm and Conv nodes of ``onnx_path`` run on ``feeds``."""
    import onnx

    nodes = {n.name: n for n in onnx.load(str(onnx_path), load_external_data=False).graph.node}
    macs = 0
    for event in _profile(onnx_path, feeds, threads=1, runs=1, optimize=False):
        node = nodes.get(event["name"][: -len("_kernel_time")])
        if node is None or node.op_type not in ("MatMul", "Gemm", "Conv"):
            continue
        shapes = [list(s.values())[0] for s in event["args"]["input_type_shape"]]
        out = int(np.prod(list(event["args"]["output_type_shape"][0].values())[0]))
        if node.op_type == "Conv":
            inner = int(np.prod(shapes[1][1:]))  # weight [C_out, C_in/groups, kh, kw]
        elif node.op_type == "Gemm" and any(a.name == "transA" and a.i for a in node.attribute):
            inner = shapes[0][0]
        else:
            inner = shapes[0][-1]
        macs += out * inner
    return macs


def kernel_split(onnx_path: Path, feeds: Mapping[str, np.ndarray], threads: int, runs: int = 3) -> dict[str, float]:
    """Milliseconds per run in ``integer``, ``qdq``, ``float_gemm`` and ``other`` kernels."""
    split = dict.fromkeys(("integer", "qdq", "float_gemm", "other"), 0.0)
    for event in _profile(onnx_path, feeds, threads, runs, optimize=True):
        op = event["args"]["op_name"]
        kind = ("integer" if op in INTEGER_KERNELS else "qdq" if op in QDQ_KERNELS
                else "float_gemm" if op in FLOAT_GEMM_KERNELS else "other")  # fmt: skip
        split[kind] += event["dur"] / 1e3 / runs
    return split
