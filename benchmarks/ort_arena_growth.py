"""Why ONNX Runtime's ``memory="default"`` holds ~450 MB for a vit_t encoder at 1024 px.

Two measurements, each configuration in a fresh process (RSS is per process):

* ``chain``: a chain of MatMul + Erf on ``16384 x width`` float tensors. With one width
  throughout, ONNX Runtime's peak is about the live set (two or three tensors); with widths that
  vary along the chain (as in a transformer: 384 for qkv, 512 for the MLP, 128 between), its
  arena and its pre-planned memory pattern both reach several times the largest pair of live
  tensors, so the encoder's ~300 MB of working memory is a property of the runtime's planning,
  not of the graph.
* ``--bundle DIR``: the bundle's encoder in edgesam's ``default`` (the arena keeps the memory)
  and ``low`` (no arena: the memory pattern's block is handed back after every run, the C heap
  trimmed) and, for comparison, without arena or memory pattern (``no pattern``: what ``low``
  was before); steady RSS after ``--calls`` runs in fresh processes, and the encoder latency of
  each measured side by side in one process (round-robin).

    python benchmarks/ort_arena_growth.py [--bundle b/int8_ort] [--calls 5] [--rounds 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

from edgesam.bench.timing import current_rss_mb, process_peak_rss_mb  # noqa: E402

ROWS = 16384
EVEN = [512] * 12
VARIED = [512, 384, 128, 512, 320, 128, 448, 256, 512, 384, 128, 512]
CONFIGS = {"arena": (True, False), "pattern, no arena": (False, True), "neither": (False, False)}


def chain_model(widths: list[int]) -> bytes:
    """ONNX bytes of ``x [ROWS, 128] -> (MatMul -> Erf) per width``."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, inits, prev, d0 = [], [], "x", 128
    for i, d in enumerate(widths):
        inits.append(numpy_helper.from_array((rng.standard_normal((d0, d)) * 0.01).astype(np.float32), f"w{i}"))
        nodes += [helper.make_node("MatMul", [prev, f"w{i}"], [f"m{i}"]), helper.make_node("Erf", [f"m{i}"], [f"e{i}"])]
        prev, d0 = f"e{i}", d
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [ROWS, 128])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [ROWS, d0])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def live_peak_mb(widths: list[int]) -> float:
    """Largest input + output pair of the chain (what an ideal planner holds), MB."""
    return max(a + b for a, b in zip([128, *widths], widths)) * ROWS * 4 / 2**20


def _chain_child(widths: list[int], config: str) -> dict[str, float]:
    import onnxruntime as ort

    arena, pattern = CONFIGS[config]
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.enable_cpu_mem_arena, so.enable_mem_pattern = 1, arena, pattern
    sess = ort.InferenceSession(chain_model(widths), so, providers=["CPUExecutionProvider"])
    x = np.zeros((ROWS, 128), np.float32)
    base = current_rss_mb()
    for _ in range(3):
        sess.run(None, {"x": x})
    return {"peak_mb": process_peak_rss_mb() - base}


def _bundle_child(bundle: str, mode: str, calls: int, threads: int) -> dict[str, float]:
    backend = _backend(bundle, mode, threads)
    x = np.zeros((1, 3, backend.image_size, backend.image_size), np.float32)
    for _ in range(calls):
        backend.encode(x)
    return {"steady_mb": current_rss_mb(), "peak_mb": process_peak_rss_mb()}


def _backend(bundle: str, mode: str, threads: int):  # noqa: ANN202
    import onnxruntime as ort

    from edgesam.runtimes.memory import trim_heap
    from edgesam.runtimes.onnxruntime_backend import OnnxRuntimeBackend

    if mode != "no pattern":
        return OnnxRuntimeBackend(bundle, intra_op_threads=threads, memory=mode)
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.enable_cpu_mem_arena, so.enable_mem_pattern = threads, False, False
    backend = OnnxRuntimeBackend(bundle, session_options=so, memory="runtime")
    run = backend._run

    def run_and_trim(role, feeds):  # noqa: ANN001, ANN202
        out = run(role, feeds)
        trim_heap()
        return out

    backend._run = run_and_trim
    return backend


def _child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps(args)], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--bundle", help="also measure this bundle's encoder (an fp32 or ONNX Runtime INT8 bundle)")
    p.add_argument("--calls", type=int, default=5)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        kind, *rest = json.loads(args.child)
        print(json.dumps(_chain_child(*rest) if kind == "chain" else _bundle_child(*rest)))
        return 0
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    for name, widths in (("one width", EVEN), ("varied widths", VARIED)):
        peaks = {c: _child(["chain", widths, c])["peak_mb"] for c in CONFIGS}
        print(f"chain, {name}: live set {live_peak_mb(widths):.0f} MB; ONNX Runtime peak "
              + ", ".join(f"{c} {v:.0f} MB" for c, v in peaks.items()))
    if args.bundle:
        modes = ("default", "low", "no pattern")
        rss = {m: _child(["bundle", args.bundle, m, args.calls, args.threads]) for m in modes}
        backends = {m: _backend(args.bundle, m, args.threads) for m in modes}
        size = backends["default"].image_size
        x = np.random.default_rng(0).standard_normal((1, 3, size, size)).astype(np.float32)
        times = {m: [] for m in modes}
        for b in backends.values():
            b.encode(x)
        for r in range(args.rounds):
            for m in modes if r % 2 == 0 else modes[::-1]:
                t0 = time.perf_counter()
                backends[m].encode(x)
                times[m].append(time.perf_counter() - t0)
        ref = np.array(times["default"])
        for m in modes:
            ratio = float(np.median(np.array(times[m]) / ref))
            print(f"encoder {m:>8}: steady {rss[m]['steady_mb']:.0f} MB, peak {rss[m]['peak_mb']:.0f} MB, "
                  f"median {np.median(times[m]) * 1e3:.0f} ms ({ratio:.2f}x default)")
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
