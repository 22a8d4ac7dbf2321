"""INT8 vs FP32 encoder latency, fidelity and file size, side by side in one process.

Variants (all on the same fp32 bundle or INT8 bundles quantized from it):

* ``ort-fp32``          the fp32 bundle in ONNX Runtime (CPU): the baseline;
* ``ort-int8``          ``edgesam quantize --backend onnxruntime`` (recipe ``ort-int8``);
* ``ort-int8-default``  ONNX Runtime's default static QDQ settings (recipe ``ort-qdq-default``),
                        to show what the recipe fixes (``--no-default-qdq`` skips it);
* ``ov-f32``            the fp32 bundle in OpenVINO with f32 forced;
* ``ov-default``        the fp32 bundle in OpenVINO with its default precision (bf16 on CPUs
                        with AVX512-BF16/AMX);
* ``ov-int8``           recipe ``ov-int8`` alone, no gate (what ``--recipe ov-int8 --no-gate`` gives);
* ``ov-nncf-plain``     the anchor: NNCF as the OpenVINO notebooks use it (``ModelType.TRANSFORMER``,
                        every other setting NNCF's default; recipe ``ov-nncf-default``), no gate;
* ``ov-int8-search``    ``edgesam quantize --backend openvino`` as shipped: recipe search, the gate at
                        ``--min-iou``, the fewest layers out of INT8, float parts at the precision
                        the gate measured (``quantization.float_precision``).

All INT8 variants calibrate on the same default set (public-domain photos from scikit-image
plus synthetic scenes), so the anchor and the search differ only in what they do with it.

Latency: ``backend.encode`` on one pre-processed image, round-robin over the variants (so
background load hits all of them alike) after warm-up; wall-clock p50/min and process CPU
time per call. Also measured in the same run: the machine's int8 and fp32 GEMM throughput
(ONNX Runtime MatMulInteger / MatMul, 2048^3), from which the encoder's INT8 floor is
``2 * encoder MACs / int8 peak``, and a profile of the ``ort-int8`` encoder (ONNX Runtime's
per-kernel times): integer kernels, Quantize/Dequantize, float GEMMs (the attention's activation
MatMuls) and the float work ONNX Runtime's CPU kernels run unfused in any INT8 graph (GELU,
LayerNorm, softmax, adds, window transposes); ``fp32 p50 / (int8 floor + the non-GEMM
float work)`` is the best speed-up ONNX Runtime's kernels can reach on this model
(``benchmarks/ort_profile.py``). Fidelity: :func:`edgesam.quantization.compare_predictors`
against ``ort-fp32`` on held-out sample scenes with generated point and box prompts.

    python benchmarks/quantization.py --arch vit_t --image-size 1024 --threads 2 --rounds 7 --json q.json
    python benchmarks/quantization.py --bundle path/to/fp32_bundle      # e.g. a trained model
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from ort_profile import gemm_peaks, graph_macs, kernel_split  # noqa: E402


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _fp32_bundle(args: argparse.Namespace, work: Path) -> Path:
    if args.bundle:
        return Path(args.bundle)
    target = work / f"{args.arch}_{args.image_size}_seed{args.seed}"
    if not (target / "edgesam.json").is_file():
        import torch

        from edgesam.export import export_bundle
        from edgesam.models import build_sam

        torch.manual_seed(args.seed)
        export_bundle(build_sam(args.arch, image_size=args.image_size), target, overwrite=True)
    return target


def _quantized(fp32: Path, work: Path, backend: str, recipe: Any, log: Callable[[str], None], min_iou: float | None = None) -> Path:
    """``recipe`` ungated (``min_iou`` None), or ``edgesam quantize``'s gated search (``recipe="auto"``)."""
    from edgesam.quantization import quantize_bundle

    name = "+".join(recipe) if isinstance(recipe, (list, tuple)) else recipe
    target = work / (f"{fp32.name}.{name}" if min_iou is None else f"{fp32.name}.{name}-iou{min_iou}")
    if not (target / "edgesam.json").is_file():
        log(f"quantizing {fp32.name} with {recipe} ...")
        gated = min_iou is not None
        quantize_bundle(fp32, target, backend=backend, recipe=recipe, gate=gated, search=gated, overwrite=True,
                        min_mask_iou=min_iou if gated else 0.97, measure_speed=False,
                        log=(lambda m: log(f"  {m}")) if gated else None)  # fmt: skip
    return target


def _float_hint(bundle: Path) -> str:
    from edgesam.export import load_bundle

    meta = load_bundle(bundle, check_hashes=False).metadata.get("quantization") or {}
    return {"bf16": "bf16", "fp32": "f32"}.get(meta.get("float_precision", "fp32"), "f32")


def _file_mb(bundle: Path) -> float:
    from edgesam.export import load_bundle

    b = load_bundle(bundle, check_hashes=False)
    path = b.path("encoder")
    files = [path, path.with_suffix(".bin")] if path.suffix == ".xml" else [path]
    return sum(f.stat().st_size for f in files) / 1e6


def run(args: argparse.Namespace) -> dict[str, Any]:
    from edgesam.bundle.io_spec import ENCODER_INPUTS
    from edgesam.quantization import CalibrationSet, compare_predictors
    from edgesam.runtimes.loader import load_backend

    log = (lambda m: print(m, file=sys.stderr)) if not args.quiet else (lambda m: None)
    work = Path(args.work_dir).absolute()
    work.mkdir(parents=True, exist_ok=True)
    fp32 = _fp32_bundle(args, work)
    t = args.threads
    ov_cfg = {"INFERENCE_NUM_THREADS": t}
    plan: dict[str, tuple[Path, str, dict[str, Any]]] = {"ort-fp32": (fp32, "onnxruntime", {"intra_op_threads": t})}
    if not args.skip_ort:
        plan["ort-int8"] = (_quantized(fp32, work, "onnxruntime", "ort-int8", log), "onnxruntime", {"intra_op_threads": t})
    if not args.no_default_qdq and not args.skip_ort:
        plan["ort-int8-default"] = (_quantized(fp32, work, "onnxruntime", "ort-qdq-default", log), "onnxruntime",
                                    {"intra_op_threads": t})  # fmt: skip
    plan["ov-f32"] = (fp32, "openvino", {"precision": "fp32", "config": ov_cfg, "cache_dir": None})
    plan["ov-default"] = (fp32, "openvino", {"config": ov_cfg, "cache_dir": None})
    if not args.skip_ov_int8:
        plan["ov-int8"] = (_quantized(fp32, work, "openvino", "ov-int8", log), "openvino", {"config": ov_cfg, "cache_dir": None})
    plan["ov-nncf-plain"] = (_quantized(fp32, work, "openvino", "ov-nncf-default", log), "openvino",
                             {"config": ov_cfg, "cache_dir": None})  # fmt: skip
    recipes = args.search_recipes.split(",") if args.search_recipes != "auto" else "auto"
    searched = _quantized(fp32, work, "openvino", recipes, log, min_iou=args.min_iou)
    plan["ov-int8-search"] = (searched, "openvino", {"config": ov_cfg, "cache_dir": None, "precision_hint": _float_hint(searched)})
    backends = {name: load_backend(path, kind, **opts) for name, (path, kind, opts) in plan.items()}

    size = backends["ort-fp32"].image_size
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, size, size)).astype(np.float32)
    for backend in backends.values():  # warm-up
        for _ in range(2):
            backend.encode(x)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in backends}
    for _ in range(args.rounds):
        for name, backend in backends.items():
            samples[name].append(_timed(lambda b=backend: b.encode(x)))
    load_after_timing = os.getloadavg()[0]
    peaks = gemm_peaks(t)
    feed = {ENCODER_INPUTS[0]: x}
    macs = graph_macs(fp32 / "encoder.onnx", feed)

    held = CalibrationSet.from_samples(args.heldout, seed=50_000, image_size=size,
                                       pixel_mean=backends["ort-fp32"].pixel_mean, pixel_std=backends["ort-fp32"].pixel_std)  # fmt: skip
    base_ms = float(np.median([w for w, _ in samples["ort-fp32"]])) * 1e3
    rows = []
    for name, backend in backends.items():
        wall = np.array([w for w, _ in samples[name]]) * 1e3
        cpu = np.array([c for _, c in samples[name]]) * 1e3
        report = compare_predictors(backends["ort-fp32"], backend, held, prompts_per_image=args.prompts, min_mask_iou=0.0)
        rows.append({
            "variant": name, "effective": getattr(backend, "effective_precision", "fp32" if "int8" not in name else "int8"),
            "p50_ms": float(np.median(wall)), "min_ms": float(wall.min()), "cpu_ms": float(np.median(cpu)),
            "speedup_vs_ort_fp32": base_ms / float(np.median(wall)), "encoder_mb": _file_mb(plan[name][0]),
            "embedding_cosine": report.embedding_cosine_mean, "embedding_cosine_min": report.embedding_cosine_min,
            "mask_iou_mean": report.mask_iou_mean, "mask_iou_min": report.mask_iou_min,
            "score_abs_diff": report.score_abs_diff_mean,
        })  # fmt: skip
    floor_ms = 2 * macs / (peaks["int8"] * 1e9) * 1e3
    kernel_ms = kernel_split(plan["ort-int8"][0] / "encoder.onnx", feed, t) if "ort-int8" in plan else None
    return {
        "load_1min": load_after_timing, "cpus": len(os.sched_getaffinity(0)), "min_iou": args.min_iou,
        "bundle": str(fp32), "image_size": size, "threads": t, "rounds": args.rounds, "encoder_gmac": macs / 1e9,
        "gemm_peak_gops": peaks, "int8_floor_ms": floor_ms, "fp32_floor_ms": 2 * macs / (peaks["fp32"] * 1e9) * 1e3,
        "ort_int8_kernel_ms": kernel_ms, "ort_int8_ceiling": base_ms / (floor_ms + kernel_ms["other"]) if kernel_ms else None,
        "heldout_images": args.heldout, "prompts_per_image": args.prompts, "rows": rows,
    }  # fmt: skip


def table(result: dict[str, Any]) -> str:
    """Markdown table of :func:`run`'s result."""
    kernel_ms = result["ort_int8_kernel_ms"]
    lines = [
        f"load average {result['load_1min']:.1f} on {result['cpus']} CPU(s) while timing; ov-int8-search gated at "
        f"mean mask IoU >= {result['min_iou']}",
        f"encoder {result['encoder_gmac']:.1f} GMAC at {result['image_size']} px, {result['threads']} thread(s); "
        f"GEMM peak int8 {result['gemm_peak_gops']['int8']:.0f} GOP/s, fp32 {result['gemm_peak_gops']['fp32']:.0f} "
        f"GFLOP/s -> floor int8 {result['int8_floor_ms']:.0f} ms, fp32 {result['fp32_floor_ms']:.0f} ms",
    ]
    if kernel_ms:
        split = {k: v / sum(kernel_ms.values()) for k, v in kernel_ms.items()}
        lines.append(
        f"ort-int8 kernel time: {100 * split['integer']:.0f}% integer GEMM/conv, {100 * split['qdq']:.0f}% Q/DQ, "
        f"{100 * split['float_gemm']:.0f}% float GEMM (attention), {100 * split['other']:.0f}% other float work "
        f"({kernel_ms['other']:.0f} ms) -> ONNX Runtime ceiling {result['ort_int8_ceiling']:.2f}x vs ort-fp32 "
        "(every GEMM at the int8 floor, no Q/DQ, the other float work as measured)")
    lines += [
        "",
        "| variant | runs as | p50 ms | min ms | CPU ms | x vs ort-fp32 | x floor | MB | emb. cos (min) | mask IoU mean (min) | score diff |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['variant']} | {r['effective']} | {r['p50_ms']:.0f} | {r['min_ms']:.0f} | {r['cpu_ms']:.0f} | "
            f"{r['speedup_vs_ort_fp32']:.2f} | {r['p50_ms'] / result['int8_floor_ms']:.1f} | {r['encoder_mb']:.1f} | "
            f"{r['embedding_cosine']:.4f} ({r['embedding_cosine_min']:.4f}) | {r['mask_iou_mean']:.4f} "
            f"({r['mask_iou_min']:.4f}) | {r['score_abs_diff']:.4f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", help="fp32 bundle to quantize (default: export --arch with seeded random weights)")
    p.add_argument("--arch", default="vit_t")
    p.add_argument("--image-size", type=int, default=1024)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=7, help="timed encoder calls per variant")
    p.add_argument("--heldout", type=int, default=4, help="held-out sample scenes for fidelity")
    p.add_argument("--prompts", type=int, default=8, help="prompts per held-out scene")
    p.add_argument("--work-dir", default=str(Path.home() / ".cache" / "edgesam" / "bench-quant"))
    p.add_argument("--no-default-qdq", action="store_true", help="skip ONNX Runtime's default-QDQ variant")
    p.add_argument("--skip-ort", action="store_true", help="skip the ONNX Runtime INT8 variants and their profile")
    p.add_argument("--min-iou", type=float, default=0.97, help="gate of the ov-int8-search variant (default 0.97)")
    p.add_argument("--search-recipes", default="auto",
                   help="recipes ov-int8-search tries (comma-separated; default: edgesam quantize's 'auto' list)")
    p.add_argument("--skip-ov-int8", action="store_true", help="skip the ungated ov-int8 variant")
    p.add_argument("--json", help="also write the result here")
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    result = run(args)
    print(table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
