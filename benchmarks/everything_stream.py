"""Segment-everything cost in encoder passes, and streaming FPS/latency, for one bundle.

In one process and on one backend instance:

1. ``everything``: ``SamAutomaticMaskGenerator(points_per_side=32).generate`` on a 1024x768
   synthetic scene (its own encoder pass included), plain and ``coarse_to_fine``, reported as
   seconds and as a multiple of one encoder pass (target: <= 20x). The encoder pass
   (``backend.encode`` on the pre-processed image, median of ``--encoder-runs``) is timed right
   before and right after each run and averaged, in wall time and in process CPU time (with
   ``--threads 1`` the CPU-time ratio barely depends on what else runs on the machine);
   ``--no-filter`` adds a worst case with the IoU/stability filters off (every one of the
   3,072 candidate masks is upscaled and scored). On ONNX Runtime also a ceiling: the decoder's
   MACs per prompt at this machine's fp32 GEMM peak plus its other kernels' measured time
   (``benchmarks/ort_profile.py``), times the prompts, plus one encoder pass;
2. ``stream``: a synthetic 640x480 video of a moving disc through ``StreamSegmenter`` +
   ``Tracker``, once paced like a camera (``--camera-fps``, stale frames dropped) and once
   lossless (every frame encoded): FPS, p50/p90 latency, dropped frames.

The default bundle is the MobileSAM architecture (vit_t, 1024 px) with seeded random weights,
exported once and cached by ``edgesam.bench.sources`` (as ``edgesam bench --arch vit_t`` does).
Random weights make predicted IoUs and mask shapes meaningless, so with the default thresholds
the post-processing load differs from a trained model's; ``--no-filter`` bounds it from above.

    python benchmarks/everything_stream.py [--bundle DIR] [--backend onnxruntime] [--json out.json]
    python benchmarks/everything_stream.py --checkpoint edgesam-demo --scene 128x96 --video 128x96 \
        --pred-iou-thresh 0.1 --stability-score-thresh 0      # a trained model (torch), its own scale
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))



def _size(text: str) -> tuple[int, int]:
    """``"WxH"`` -> (height, width)."""
    w, _, h = text.partition("x")
    return int(h), int(w)


def _scene(height: int, width: int) -> np.ndarray:
    from edgesam.scenes import SceneConfig, generate_scene

    return generate_scene(7, SceneConfig(height=height, width=width, min_objects=4, max_objects=8)).image


def _disc_video(n: int, height: int, width: int) -> tuple[np.ndarray, tuple[float, float]]:
    """``uint8 [n, H, W, 3]``: a red disc crossing a gradient (1% of the width a frame); its start."""
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([40 + xx * 120 // width, 60 + yy * 120 // height, np.full_like(xx, 150)], -1).astype(np.uint8)
    frames = np.repeat(base[None], n, axis=0)
    x0, y0, r, step = 0.2 * width, 0.5 * height, 0.12 * min(height, width), 0.01 * width
    for t in range(n):
        frames[t][(xx - x0 - step * t) ** 2 + (yy - y0) ** 2 <= r**2] = (235, 30, 30)
    return frames, (x0, y0)


def _timed(fn: Any) -> tuple[Any, float, float]:
    """``fn()``, its wall time and this process's CPU time, in seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _encoder(backend: Any, image: np.ndarray, runs: int) -> dict[str, float]:
    """Median wall and CPU milliseconds of ``backend.encode`` (after one warm-up call)."""
    from edgesam.bench.cases import model_input

    x = model_input(backend, image)
    backend.encode(x)
    times = np.array([_timed(lambda: backend.encode(x))[1:] for _ in range(runs)]) * 1000.0
    return {"wall_ms": float(np.median(times[:, 0])), "cpu_ms": float(np.median(times[:, 1])), "runs": runs}


def _everything(backend: Any, image: np.ndarray, **options: Any) -> dict[str, Any]:
    from edgesam.everything import SamAutomaticMaskGenerator
    from edgesam.predictor import SamPredictor

    gen = SamAutomaticMaskGenerator(SamPredictor(backend), points_per_side=32, output_mode="coco_rle", **options)
    calls = {"n": 0, "prompts": 0}
    decode = backend.decode

    def counting(*args: Any) -> Any:
        calls["n"] += 1
        calls["prompts"] += int(args[1].shape[0])
        return decode(*args)

    gen.predictor.backend.decode = counting  # count decoder calls on this instance only
    try:
        records, seconds, cpu = _timed(lambda: gen.generate(image))
    finally:
        del gen.predictor.backend.decode
    return {"seconds": seconds, "cpu_seconds": cpu, "masks": len(records), "decoder_calls": calls["n"],
            "prompts": calls["prompts"]}  # fmt: skip


def _ort_ceiling(decoder: Path, backend: Any, image: np.ndarray, prompts: int, threads: int) -> dict[str, float]:
    """Decoder cost per prompt if every GEMM ran at this machine's fp32 peak (ONNX Runtime).

    ``prompts`` single-point prompts in batches of 64 (the generator's default): their MACs at the
    measured fp32 GEMM peak plus the measured time of the decoder's other kernels (LayerNorm,
    GELU, softmax, adds, transposes), which ONNX Runtime runs unfused.
    """
    from ort_profile import gemm_peaks, graph_macs, kernel_split

    from edgesam.bench.cases import model_input
    from edgesam.bundle.io_spec import DECODER_INPUTS

    batch = 64
    embedding = backend.encode(model_input(backend, image))
    side = 4 * embedding.shape[-1]
    coords = np.random.default_rng(0).random((batch, 2, 2), np.float32) * float(backend.image_size)
    labels = np.tile(np.array([[1.0, -1.0]], np.float32), (batch, 1))
    masks = np.zeros((batch, 1, side, side), np.float32)
    feeds = dict(zip(DECODER_INPUTS, (embedding, coords, labels, masks, np.zeros(batch, np.float32))))
    macs = graph_macs(decoder, feeds) / batch
    other_ms = kernel_split(decoder, feeds, threads)["other"] / batch
    peak = gemm_peaks(threads)["fp32"]
    per_prompt = 2 * macs / (peak * 1e9) * 1e3 + other_ms
    return {"decoder_gmac_per_prompt": macs / 1e9, "fp32_peak_gflops": peak, "other_kernels_ms_per_prompt": other_ms,
            "ceiling_ms_per_prompt": per_prompt, "prompts": prompts}  # fmt: skip


def _stream(backend: Any, frames: np.ndarray, start: tuple[float, float], camera_fps: float | None,
            candidates: bool = True) -> dict[str, Any]:
    from edgesam.stream import StreamSegmenter, Tracker

    tracker = Tracker(point=start, candidates=candidates)
    with StreamSegmenter(backend) as stream:
        stream.start(frames, pace_fps=camera_fps, drop=camera_fps is not None)
        lost = sum(int(tracker.update(frame).lost) for frame in stream)
    s = stream.stats.summary()
    mode = (f"camera {camera_fps:g} fps" if camera_fps else "every frame") + ("" if candidates else ", one prompt a frame")
    return {"mode": mode, "fps": s.fps,
            "latency_p50_ms": s.latency.p50_ms, "latency_p90_ms": s.latency.p90_ms, "encode_p50_ms": s.encode.p50_ms,
            "decode_p50_ms": s.decode.p50_ms, "frames": s.frames_submitted, "decoded": s.frames_decoded,
            "dropped": s.frames_dropped, "skipped": s.frames_skipped, "lost": lost}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", help="fp32 bundle folder (default: vit_t 1024 px, seeded random weights)")
    p.add_argument("--checkpoint", help="run a torch checkpoint / model name instead of a bundle")
    p.add_argument("--arch", default="vit_t", help="architecture for the default random-weight bundle")
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--threads", type=int, help="intra-op threads (onnxruntime, torch)")
    p.add_argument("--encoder-runs", type=int, default=3)
    p.add_argument("--frames", type=int, default=60, help="frames of the synthetic video")
    p.add_argument("--camera-fps", type=float, default=30.0)
    p.add_argument("--no-filter", action="store_true", help="also time everything with the filters off")
    p.add_argument("--pred-iou-thresh", type=float, default=0.88)
    p.add_argument("--stability-score-thresh", type=float, default=0.95)
    p.add_argument("--scene", type=_size, default=(768, 1024), metavar="WxH", help="everything image (1024x768)")
    p.add_argument("--video", type=_size, default=(480, 640), metavar="WxH", help="stream frames (640x480)")
    p.add_argument("--stream-only", action="store_true", help="skip segment-everything")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args(argv)

    from edgesam.bench.sources import prepare_source
    from edgesam.export import load_bundle
    from edgesam.runtimes.loader import load_backend

    if args.checkpoint:
        from edgesam.hub import load_model
        from edgesam.runtimes.torch_backend import TorchBackend

        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        model = load_model(args.checkpoint)
        backend, where, arch, random_weights = TorchBackend(model), args.checkpoint, model.arch, False
    else:
        source = prepare_source(bundle=args.bundle, arch=None if args.bundle else args.arch, log=print)
        options = {"intra_op_threads": args.threads} if args.threads and args.backend == "onnxruntime" else {}
        backend = load_backend(source.bundle, args.backend, **options)
        where, arch, random_weights = str(source.bundle), source.arch, source.random_weights
    image = _scene(*args.scene)
    print(f"model {where} ({arch}, {backend.image_size} px, {backend.name}); image {image.shape}")

    result: dict[str, Any] = {"model": where, "arch": arch, "backend": backend.name, "random_weights": random_weights,
                              "image": list(image.shape)}  # fmt: skip
    thresholds = {"pred_iou_thresh": args.pred_iou_thresh, "stability_score_thresh": args.stability_score_thresh}
    result["thresholds"] = thresholds
    runs: dict[str, dict[str, Any]] = {"plain": thresholds, "coarse_to_fine": {**thresholds, "coarse_to_fine": True}}
    if args.no_filter:
        runs["plain, filters off"] = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
    result["everything"] = {}
    for name, opts in ({} if args.stream_only else runs).items():
        # the encoder is timed right before and after: on a shared machine the load drifts
        before = _encoder(backend, image, args.encoder_runs)
        r = _everything(backend, image, **opts)
        after = _encoder(backend, image, args.encoder_runs)
        enc = {k: (before[k] + after[k]) / 2 for k in ("wall_ms", "cpu_ms")}
        r["encoder"] = {"before": before, "after": after}
        r["x_encoder"] = r["seconds"] * 1000.0 / enc["wall_ms"]
        r["x_encoder_cpu"] = r["cpu_seconds"] * 1000.0 / enc["cpu_ms"]
        result["everything"][name] = r
        print(f"encoder {before['wall_ms']:.0f} / {after['wall_ms']:.0f} ms wall before/after, "
              f"{enc['cpu_ms']:.0f} ms CPU; everything 32x32 {name}: {r['seconds']:.2f} s = {r['x_encoder']:.1f}x "
              f"encoder ({r['x_encoder_cpu']:.1f}x in CPU time); {r['masks']} masks, {r['prompts']} prompts in "
              f"{r['decoder_calls']} decoder calls")  # fmt: skip
    if backend.name == "onnxruntime" and not args.stream_only:
        plain = result["everything"]["plain"]
        enc_ms = (plain["encoder"]["before"]["wall_ms"] + plain["encoder"]["after"]["wall_ms"]) / 2
        decoder = load_bundle(source.bundle, check_hashes=False).path("decoder")
        c = _ort_ceiling(decoder, backend, image, plain["prompts"], args.threads or os.cpu_count() or 1)
        c["x_encoder"] = (enc_ms + c["prompts"] * c["ceiling_ms_per_prompt"]) / enc_ms
        result["ort_ceiling"] = c
        print(f"ONNX Runtime ceiling: decoder {c['decoder_gmac_per_prompt']:.3f} GMAC per prompt at the fp32 peak "
              f"({c['fp32_peak_gflops']:.0f} GFLOP/s) + {c['other_kernels_ms_per_prompt']:.2f} ms of other kernels = "
              f"{c['ceiling_ms_per_prompt']:.2f} ms per prompt; {c['prompts']} prompts + one encoder pass >= "
              f"{c['x_encoder']:.1f}x encoder, post-processing not counted")  # fmt: skip
    frames, start = _disc_video(args.frames, *args.video)
    result["stream"] = []
    # the tracker's default decodes three prompts a frame (``Tracker(candidates=True)``); the last
    # run decodes one, for the cost of the other two
    for fps, candidates in ((args.camera_fps, True), (None, True), (None, False)):
        r = _stream(backend, frames, start, fps, candidates)
        result["stream"].append(r)
        print(f"stream {r['mode']}: {r['fps']:.2f} FPS, latency p50 {r['latency_p50_ms']:.0f} ms / p90 "
              f"{r['latency_p90_ms']:.0f} ms (encode p50 {r['encode_p50_ms']:.0f} ms, decode p50 "
              f"{r['decode_p50_ms']:.0f} ms); {r['decoded']}/{r['frames']} frames decoded, {r['dropped']} dropped, "
              f"{r['lost']} lost")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
