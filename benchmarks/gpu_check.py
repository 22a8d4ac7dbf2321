"""One-command GPU check: torch precisions, latency, AMP distillation and TensorRT, in one report.

On a CUDA machine (under 8 minutes on one data-centre GPU)::

    python benchmarks/gpu_check.py --out gpu-report

* parity: torch fp32 / fp16 / bf16 on the GPU against torch fp32 on the CPU, for vit_t,
  edge_sam and vit_h (official checkpoint layouts, seeded random weights from
  :func:`edgesam.models.build_sam`): embedding cosine and relative error, mask IoU of the
  4 masks of 4 prompts (clicks and a box), IoU-score difference;
* latency: encoder (one 1024 px image) and decoder (one click) per arch and precision, p50/p90;
* distillation: a few encoder-distillation steps (:class:`EncoderDistillation`) at 1024 px
  with AMP (fp16 + GradScaler on CUDA, bf16 on CPU): images/s and peak memory;
* TensorRT, when ``tensorrt`` imports: the vit_t bundle as fp32, as an FP16-typed bundle
  (``edgesam export --precision fp16``) and as a TensorRT INT8 (Q/DQ) bundle, each with the
  backend's golden check and its encoder / decoder latency. When it does not import, the
  report says so and why.

Writes ``OUT/gpu_check.json`` and ``OUT/gpu_check.md``. Each section records its own error
instead of stopping the run; a section that would start after ``--budget-s`` is skipped and
marked so. ``--device cpu --tiny`` runs every section on a 128 px test model on the CPU (the
project's tests use it); its figures say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

ARCHS = ("vit_t", "edge_sam", "vit_h")
DTYPES = ("fp32", "fp16", "bf16")
TRT_PRECISIONS = ("fp32", "fp16", "int8")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder for gpu_check.json and gpu_check.md")
    p.add_argument("--device", default="cuda", help="torch device to check (default cuda; cpu for a dry run)")
    p.add_argument("--tiny", action="store_true", help="a 128 px two-layer test model instead of the real archs")
    p.add_argument("--archs", default=",".join(ARCHS), help=f"comma list (default {','.join(ARCHS)})")
    p.add_argument("--dtypes", default=",".join(DTYPES), help=f"comma list (default {','.join(DTYPES)})")
    p.add_argument("--runs", type=int, default=10, help="timed runs per latency figure (default 10)")
    p.add_argument("--distill-steps", type=int, default=5, help="timed AMP steps per arch (default 5)")
    p.add_argument("--distill-batch", type=int, default=4, help="images per distillation step (default 4)")
    p.add_argument("--trt-image-size", type=int, default=1024, help="input side of the TensorRT bundles")
    p.add_argument("--no-tensorrt", action="store_true", help="skip the TensorRT section")
    p.add_argument("--budget-s", type=float, default=360.0, help="start no new section after this (default 360)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.archs = ["tiny"] if args.tiny else [a for a in args.archs.split(",") if a]
    args.dtypes = [d for d in args.dtypes.split(",") if d]
    bad = [d for d in args.dtypes if d not in DTYPES]
    if bad:
        p.error(f"unknown dtype(s) {bad}; choose from {DTYPES}")
    if args.runs < 1 or args.distill_steps < 1 or args.distill_batch < 1:
        p.error("--runs, --distill-steps and --distill-batch must be >= 1")
    return args


# ---------------------------------------------------------------------- models and inputs
def build_model(arch: str, seed: int, image_size: int | None = None) -> Any:
    """Seeded random weights in the official layout (``tiny``: the tests' 128 px model)."""
    import torch

    from edgesam.models import ModelSpec, build_sam

    torch.manual_seed(seed)
    if arch == "tiny":
        spec = ModelSpec("gpu_check_tiny", "sam_vit", "tiny check model", image_size=128, decoder_depth=1,
                         decoder_mlp_dim=256, encoder_kwargs=dict(embed_dim=32, depth=1, num_heads=2, window_size=4))
        return build_sam(spec).eval()
    return (build_sam(arch) if image_size is None else build_sam(arch, image_size=image_size)).eval()


def model_inputs(model: Any, seed: int) -> dict[str, np.ndarray]:
    """A smooth seeded image, normalised and padded ``[1,3,S,S]``, and 4 prompts (3 clicks, 1 box)."""
    import cv2

    s = int(model.image_size)
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, size=(8, 8, 3)).astype(np.float32)
    img = cv2.resize(coarse, (s, (3 * s) // 4), interpolation=cv2.INTER_CUBIC)
    mean = np.asarray(model.pixel_mean.detach().cpu(), np.float32).reshape(1, 1, 3)
    std = np.asarray(model.pixel_std.detach().cpu(), np.float32).reshape(1, 1, 3)
    x = np.zeros((1, 3, s, s), np.float32)
    x[0, :, : img.shape[0]] = ((img - mean) / std).transpose(2, 0, 1)
    h = (3 * s) // 4
    clicks = [(0.3 * s, 0.3 * h), (0.6 * s, 0.5 * h), (0.8 * s, 0.7 * h)]
    coords = [[c, (0.0, 0.0)] for c in clicks] + [[(0.2 * s, 0.2 * h), (0.7 * s, 0.8 * h)]]
    labels = [[1, -1]] * 3 + [[2, 3]]
    e = s // 16
    return {
        "image": x,
        "point_coords": np.asarray(coords, np.float32),
        "point_labels": np.asarray(labels, np.float32),
        "mask_input": np.zeros((4, 1, 4 * e, 4 * e), np.float32),
        "has_mask_input": np.zeros(4, np.float32),
    }


def _decode_args(inputs: dict[str, np.ndarray], b: int | None = None) -> tuple[np.ndarray, ...]:
    keys = ("point_coords", "point_labels", "mask_input", "has_mask_input")
    return tuple(inputs[k] if b is None else inputs[k][:b] for k in keys)


def compare(ref: tuple[np.ndarray, ...], got: tuple[np.ndarray, ...]) -> dict[str, float]:
    """Parity of ``(embedding, iou_pred, low_res_masks)`` against the reference."""
    from edgesam.metrics import embedding_cosine, mask_iou

    (e0, i0, m0), (e1, i1, m1) = ref, got
    return {
        "embedding_cosine": embedding_cosine(e0, e1),
        "embedding_rel_error": float(np.abs(e1 - e0).max() / max(1e-12, float(np.abs(e0).max()))),
        "mask_iou_mean": float(mask_iou(m0 > 0, m1 > 0).mean()),
        "mask_iou_min": float(mask_iou(m0 > 0, m1 > 0).min()),
        "score_abs_diff_max": float(np.abs(i1 - i0).max()),
    }


def timing(fn: Callable[[], object], runs: int) -> dict[str, float]:
    """p50 / p90 / mean milliseconds of ``fn`` after two warm-up calls (``fn`` must block)."""
    for _ in range(2):
        fn()
    ms = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1e3)
    return {"p50_ms": float(np.percentile(ms, 50)), "p90_ms": float(np.percentile(ms, 90)),
            "mean_ms": float(np.mean(ms)), "runs": runs}  # fmt: skip


# ---------------------------------------------------------------------- sections
def torch_section(arch: str, args: argparse.Namespace) -> dict[str, Any]:
    """CPU fp32 reference, then parity and latency for each dtype on ``args.device``."""
    import torch

    from edgesam.runtimes.torch_backend import TorchBackend

    model = build_model(arch, args.seed)
    inputs = model_inputs(model, args.seed)
    t0 = time.perf_counter()
    cpu = TorchBackend(copy.deepcopy(model))
    emb = cpu.encode(inputs["image"])
    ref = (emb, *cpu.decode(emb, *_decode_args(inputs)))
    out: dict[str, Any] = {"image_size": int(model.image_size), "cpu_reference_s": time.perf_counter() - t0,
                           "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6, "dtypes": {}}  # fmt: skip
    del cpu
    dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
    for name in args.dtypes:
        row: dict[str, Any] = {}
        try:
            backend = TorchBackend(copy.deepcopy(model), device=args.device, dtype=dtypes[name])
            e = backend.encode(inputs["image"])
            row["parity"] = compare(ref, (e, *backend.decode(e, *_decode_args(inputs))))
            row["encoder"] = timing(lambda: backend.encode(inputs["image"]), args.runs)
            row["decoder_1_click"] = timing(lambda: backend.decode(e, *_decode_args(inputs, 1)), args.runs)
            del backend
        except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
            row["error"] = f"{type(exc).__name__}: {exc}"
        _free(args.device)
        out["dtypes"][name] = row
    return out


def distill_section(arch: str, args: argparse.Namespace) -> dict[str, Any]:
    """Encoder-distillation steps with AMP: images/s and peak device memory."""
    import torch

    from edgesam.distillation.objectives import EncoderDistillation

    dev = torch.device(args.device)
    student = build_model(arch, args.seed).train().to(dev)
    objective = EncoderDistillation(student)
    s, b, e = int(student.image_size), args.distill_batch, int(student.image_size) // 16
    amp_dtype = torch.float16 if dev.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(dev.type, enabled=dev.type == "cuda")
    opt = torch.optim.AdamW(student.image_encoder.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(args.seed)
    batch = {"image": torch.randn(b, 3, s, s, generator=gen).to(dev),
             "teacher_embedding": torch.randn(b, 256, e, e, generator=gen).to(dev),
             "input_size": torch.tensor([[3 * s // 4, s]] * b)}  # fmt: skip
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=amp_dtype):
            loss = objective(batch)["mse"]
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return float(loss.detach())  # blocks until the step is done

    first = step()
    t0 = time.perf_counter()
    losses = [step() for _ in range(args.distill_steps)]
    seconds = time.perf_counter() - t0
    out = {"image_size": s, "batch": b, "steps": args.distill_steps, "amp": str(amp_dtype).replace("torch.", ""),
           "images_per_s": b * args.distill_steps / seconds, "loss_first": first, "loss_last": losses[-1],
           "finite": bool(np.isfinite([first, *losses]).all())}  # fmt: skip
    if dev.type == "cuda":
        out["peak_memory_gib"] = torch.cuda.max_memory_allocated(dev) / 2**30
    del student, objective, opt
    _free(args.device)
    return out


def tensorrt_status() -> tuple[bool, str]:
    """Whether TensorRT can run here, and a plain sentence saying so."""
    try:
        import tensorrt
    except Exception as exc:  # noqa: BLE001
        return False, f"tensorrt is not importable here ({type(exc).__name__}: {exc}); TensorRT was not run"
    from edgesam.quantization.tensorrt_int8 import tensorrt_available

    if not tensorrt_available():
        return False, f"tensorrt {tensorrt.__version__} imports, but no CUDA GPU is usable through cuda-python"
    return True, f"tensorrt {tensorrt.__version__}"


def tensorrt_section(args: argparse.Namespace, work: Path,
                     over_budget: Callable[[], bool] = lambda: False) -> dict[str, Any]:
    """vit_t bundles (fp32, FP16-typed, INT8 Q/DQ) on the TensorRT backend: golden check and latency."""
    from edgesam.export import export_bundle
    from edgesam.quantization import quantize_bundle
    from edgesam.quantization.fp16 import fp16_bundle
    from edgesam.quantization.recipes import get_recipe
    from edgesam.runtimes.tensorrt_backend import TensorRTBackend

    arch = "tiny" if args.tiny else "vit_t"
    model = build_model(arch, args.seed, None if args.tiny else args.trt_image_size)
    out: dict[str, Any] = {"arch": arch, "image_size": int(model.image_size), "precisions": {}}
    t0 = time.perf_counter()
    bundles = {"fp32": export_bundle(model, work / "fp32")}
    out["export_s"] = time.perf_counter() - t0
    int8_recipe = get_recipe("trt-int8").replace(calibration_images=8, heldout_images=2)
    makers = {
        "fp16": lambda: fp16_bundle(bundles["fp32"], work / "fp16", heldout_images=2, prompts_per_image=4).path,
        "int8": lambda: quantize_bundle(bundles["fp32"], work / "int8", backend="tensorrt", gate=False,
                                        search=False, recipe=int8_recipe).path,
    }  # fmt: skip
    inputs = model_inputs(model, args.seed)
    for precision in TRT_PRECISIONS:
        row: dict[str, Any] = {}
        if over_budget():
            out["precisions"][precision] = {"error": "skipped: past the time budget"}
            continue
        try:
            t0 = time.perf_counter()
            if precision not in bundles:
                bundles[precision] = makers[precision]()
            row["bundle_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            backend = TensorRTBackend(bundles[precision], precision=precision, cache_dir=work / "engines",
                                      golden_check=False)  # fmt: skip
            row["build_s"] = time.perf_counter() - t0
            from edgesam.runtimes.golden import check_golden

            golden = check_golden(backend)
            row["golden"] = {"mask_iou": golden.mask_iou, "min_mask_iou": golden.min_mask_iou,
                             "embedding_rel_error": golden.embedding_rel_error}  # fmt: skip
            e = backend.encode(inputs["image"])
            row["encoder"] = timing(lambda: backend.encode(inputs["image"]), args.runs)
            row["decoder_1_click"] = timing(lambda: backend.decode(e, *_decode_args(inputs, 1)), args.runs)
            row["trt_version"], row["gpu"] = backend.trt_version, backend.gpu_name
            del backend
        except Exception as exc:  # noqa: BLE001
            row["error"] = f"{type(exc).__name__}: {exc}"
            row["traceback"] = traceback.format_exc(limit=6)
        out["precisions"][precision] = row
    return out


def _free(device: str) -> None:
    import gc

    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


# ---------------------------------------------------------------------- report
def environment(device: str) -> dict[str, Any]:
    import torch

    env: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                           "machine": platform.machine(), "cpu_count": os.cpu_count(), "device": device,
                           "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}  # fmt: skip
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.device(device))
        env.update(gpu=props.name, gpu_memory_gib=props.total_memory / 2**30, cuda=torch.version.cuda)
    return env


def _fmt(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) else "-" if value is None else str(value)


def render_markdown(report: dict[str, Any]) -> str:
    """The report as markdown tables (one per section)."""
    env = report["environment"]
    lines = [f"# edgesam GPU check ({report['finished_utc']})", "",
             f"Device: {env.get('gpu', env['device'])}; torch {env['torch']}; CUDA {env.get('cuda', '-')}; "
             f"{env['cpu_count']} CPUs, load {_fmt(env.get('load_avg_1m'), 2)}. Seeded random weights in the "
             f"official layouts (latency does not depend on the values; parity is a property of the runtime).",
             "", "## torch on the device vs torch fp32 on the CPU", "",
             "| arch | dtype | embedding cosine | embedding rel. error | mask IoU mean (min) | score diff | "
             "encoder p50 / p90 ms | decoder (1 click) p50 ms |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for arch, sec in report["torch"].items():
        if "error" in sec:
            lines.append(f"| {arch} | - | error: {sec['error']} | | | | | |")
            continue
        for dtype, row in sec["dtypes"].items():
            if "error" in row:
                lines.append(f"| {arch} | {dtype} | error: {row['error']} | | | | | |")
                continue
            p = row["parity"]
            lines.append(f"| {arch} | {dtype} | {_fmt(p['embedding_cosine'], 5)} | {_fmt(p['embedding_rel_error'])} | "
                         f"{_fmt(p['mask_iou_mean'])} ({_fmt(p['mask_iou_min'])}) | {_fmt(p['score_abs_diff_max'])} | "
                         f"{_fmt(row['encoder']['p50_ms'], 2)} / {_fmt(row['encoder']['p90_ms'], 2)} | "
                         f"{_fmt(row['decoder_1_click']['p50_ms'], 2)} |")  # fmt: skip
    lines += ["", "## Encoder distillation with AMP", "",
              "| arch | px | batch | AMP | images/s | peak memory GiB | loss first -> last |",
              "|---|---|---|---|---|---|---|"]
    for arch, row in report["distill"].items():
        if "error" in row:
            lines.append(f"| {arch} | error: {row['error']} | | | | | |")
            continue
        lines.append(f"| {arch} | {row['image_size']} | {row['batch']} | {row['amp']} | "
                     f"{_fmt(row['images_per_s'], 2)} | {_fmt(row.get('peak_memory_gib'), 2)} | "
                     f"{_fmt(row['loss_first'])} -> {_fmt(row['loss_last'])} |")  # fmt: skip
    lines += ["", "## TensorRT", "", report["tensorrt_status"], ""]
    trt = report.get("tensorrt")
    if trt and "precisions" in trt:
        lines += [f"{trt['arch']} at {trt['image_size']} px.", "",
                  "| precision | golden mask IoU | encoder p50 / p90 ms | decoder (1 click) p50 ms | build s |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for precision, row in trt["precisions"].items():
            if "error" in row:
                lines.append(f"| {precision} | error: {row['error']} | | | |")
                continue
            lines.append(f"| {precision} | {_fmt(row['golden']['mask_iou'])} | {_fmt(row['encoder']['p50_ms'], 2)} / "
                         f"{_fmt(row['encoder']['p90_ms'], 2)} | {_fmt(row['decoder_1_click']['p50_ms'], 2)} | "
                         f"{_fmt(row['build_s'], 1)} |")  # fmt: skip
    elif trt and "error" in trt:
        lines.append(f"error: {trt['error']}")
    if report["skipped"]:
        lines += ["", "## Skipped (time budget)", "", *[f"- {s}" for s in report["skipped"]]]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``gpu_check.json`` and ``gpu_check.md`` into ``out_dir`` (temporary names, then renamed)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = (out / "gpu_check.json", out / "gpu_check.md")
    texts = (json.dumps(report, indent=2, sort_keys=True, default=str), render_markdown(report))
    for path, text in zip(paths, texts):
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return paths


def run(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every section in turn, within the time budget; returns the report dict."""
    start = time.perf_counter()
    report: dict[str, Any] = {"args": {k: v for k, v in vars(args).items()}, "environment": environment(args.device),
                              "torch": {}, "distill": {}, "skipped": []}  # fmt: skip

    def section(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        if time.perf_counter() - start > args.budget_s:
            report["skipped"].append(name)
            log(f"skipped {name}: past the {args.budget_s:.0f} s budget")
            return None
        t0 = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
            result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=6)}
        result["seconds"] = time.perf_counter() - t0
        log(f"{name}: {result['seconds']:.1f} s" + (f" ERROR {result['error']}" if "error" in result else ""))
        return result

    for arch in args.archs:
        got = section(f"torch {arch}", lambda: torch_section(arch, args))
        if got is not None:
            report["torch"][arch] = got
    for arch in [a for a in args.archs if a != "vit_h"]:  # the teacher is not distilled
        got = section(f"distill {arch}", lambda: distill_section(arch, args))
        if got is not None:
            report["distill"][arch] = got
    ok, status = (False, "TensorRT section not requested (--no-tensorrt)") if args.no_tensorrt else tensorrt_status()
    report["tensorrt_status"] = status
    log(status)
    if ok:
        with tempfile.TemporaryDirectory(prefix="edgesam-gpu-check-") as work:
            late = lambda: time.perf_counter() - start > args.budget_s  # noqa: E731
            report["tensorrt"] = section("tensorrt", lambda: tensorrt_section(args, Path(work), late))
    report["seconds"] = time.perf_counter() - start
    report["finished_utc"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return report


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print("gpu_check: error: torch sees no CUDA GPU; use --device cpu --tiny for a dry run", file=sys.stderr)
            return 2
    report = run(args)
    json_path, md_path = write_report(report, args.out)
    print(f"wrote {json_path} and {md_path} ({report['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
