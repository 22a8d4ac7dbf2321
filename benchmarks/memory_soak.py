"""Memory soak: many mixed predictions, images of different sizes, segment-everything and a
tracked stream, with the process RSS recorded over time; exits 1 if the RSS grows.

Phase 1 (``--images`` images, sizes cycling through ``SIZES``): ``set_image``, then
``--predictions`` in all spread over the images, mixing one click (3 masks), one box, a
refinement with the previous low-res logits, and a batch of 16 boxes; every ``--everything-every``
th image also runs segment-everything (``--points-per-side``). Phase 2: ``--frames`` frames of
a moving scene through ``StreamSegmenter`` + ``Tracker``.

Growth check: the RSS after each image is compared cycle against cycle (one cycle = one pass
through ``SIZES``, so every window sees the same image sizes): the highest RSS of the last
cycle minus the highest of the second (the first warms the runtime up) must stay within
``--slack-mb``; for the stream, the highest RSS over the last quarter of frames minus the
highest over the second quarter. A leak of a few KB per prediction adds up to MBs over 5,000.

    python benchmarks/memory_soak.py BUNDLE --backend onnxruntime --threads 2 \\
        --predictions 5000 --images 100 --frames 200 --csv soak.csv
    python benchmarks/memory_soak.py BUNDLE --images 20 --predictions 400 --frames 40   # quick

The process imports no torch (blocked), like a runtime-only install.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

sys.modules["torch"] = None  # type: ignore[assignment]  # runtime-only: `import torch` fails

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

from edgesam.bench.timing import process_peak_rss_mb  # noqa: E402
from edgesam.loading import thread_options  # noqa: E402
from edgesam.bench.memory import process_rss_mb  # noqa: E402
from edgesam.everything import SamAutomaticMaskGenerator  # noqa: E402
from edgesam.predictor import SamPredictor  # noqa: E402
from edgesam.stream import StreamSegmenter, Tracker  # noqa: E402

#: (height, width) of the phase-1 images, in cycle order.
SIZES = ((480, 640), (768, 1024), (1080, 1920), (600, 600), (240, 320), (1200, 900), (720, 1280),
         (1536, 2048), (333, 777), (1024, 768))


def _scene(rng: np.random.Generator, h: int, w: int, shift: float = 0.0) -> np.ndarray:
    """Smooth background with a few bright rectangles (so masks are not empty)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.stack([(x / w) * 120, (y / h) * 120, np.full_like(x, 60)], axis=2)
    for _ in range(4):
        x0, y0 = rng.uniform(0, 0.7) * w + shift, rng.uniform(0, 0.7) * h
        image[int(y0):int(y0 + h / 5), max(0, int(x0)):max(0, int(x0 + w / 5))] = rng.uniform(150, 255, 3)
    return image.astype(np.uint8)


def _growth(samples: list[float], windows: int) -> tuple[float, float, float]:
    """(reference, final, growth): max of window 2 vs max of the last window, out of `windows`."""
    n = max(1, len(samples) // windows)
    ref = max(samples[n:2 * n] or samples)
    final = max(samples[-n:])
    return ref, final, final - ref


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("bundle", type=Path)
    p.add_argument("--backend", default="onnxruntime")
    p.add_argument("--memory", default="default", help="backend memory mode (default, low, runtime)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--predictions", type=int, default=5000)
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--everything-every", type=int, default=10)
    p.add_argument("--points-per-side", type=int, default=8)
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--slack-mb", type=float, default=25.0)
    p.add_argument("--csv", type=Path, default=None, help="write every RSS sample here")
    p.add_argument("--json", type=Path, default=None, help="write the summary here")
    args = p.parse_args(argv)
    if args.images < 2 * len(SIZES):
        p.error(f"--images must be >= {2 * len(SIZES)} (two cycles of {len(SIZES)} sizes)")
    if args.predictions < args.images or args.frames < 8:
        p.error("--predictions must be >= --images and --frames >= 8")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    from edgesam.runtimes.loader import load_backend

    options = {"memory": args.memory, **thread_options(args.backend, args.threads)}
    predictor = SamPredictor(load_backend(args.bundle, args.backend, **options))
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    rows: list[dict[str, float | int | str]] = []
    per_image = [args.predictions // args.images + (i < args.predictions % args.images)
                 for i in range(args.images)]
    done = 0
    for i in range(args.images):
        h, w = SIZES[i % len(SIZES)]
        image = _scene(rng, h, w)
        predictor.set_image(image)
        low = None
        for k in range(per_image[i]):
            kind = k % 4
            if kind == 0:
                _, _, low3 = predictor.predict(point_coords=np.array([[w / 2, h / 2]]), point_labels=np.array([1]))
                low = low3[:1]
            elif kind == 1:
                predictor.predict(box=np.array([w * 0.2, h * 0.2, w * 0.7, h * 0.8]), multimask_output=False)
            elif kind == 2 and low is not None:
                predictor.predict(point_coords=np.array([[w / 3, h / 3]]), point_labels=np.array([1]),
                                  mask_input=low, multimask_output=False)
            else:
                x0 = rng.uniform(0, w * 0.6, 16)
                y0 = rng.uniform(0, h * 0.6, 16)
                boxes = np.stack([x0, y0, x0 + w * 0.3, y0 + h * 0.3], axis=1)
                predictor.predict_batch(boxes=boxes, multimask_output=False)
            done += 1
        if args.everything_every and i % args.everything_every == args.everything_every - 1:
            SamAutomaticMaskGenerator(predictor, points_per_side=args.points_per_side).generate(image)
        rows.append({"phase": "images", "index": i, "height": h, "width": w, "predictions": done,
                     "seconds": time.perf_counter() - start, "rss_mb": process_rss_mb()})
        print(f"image {i + 1}/{args.images} {h}x{w}: {done} predictions, RSS {rows[-1]['rss_mb']:.0f} MB",
              flush=True)
    predictor.reset_image()
    frames = [_scene(np.random.default_rng(1), 720, 1280, shift=4.0 * f) for f in range(min(args.frames, 16))]
    tracker = Tracker(point=(400.0, 200.0))
    with StreamSegmenter(predictor) as stream:
        stream.start((frames[f % len(frames)] for f in range(args.frames)), drop=False)
        for f, encoded in enumerate(stream):
            tracker.update(encoded)
            rows.append({"phase": "stream", "index": f, "height": 720, "width": 1280, "predictions": done,
                         "seconds": time.perf_counter() - start, "rss_mb": process_rss_mb()})
    stream_rss = [float(r["rss_mb"]) for r in rows if r["phase"] == "stream"]
    image_rss = [float(r["rss_mb"]) for r in rows if r["phase"] == "images"]
    cycles = len(image_rss) // len(SIZES)
    ref, final, growth = _growth(image_rss[:cycles * len(SIZES)], cycles)
    s_ref, s_final, s_growth = _growth(stream_rss, 4) if len(stream_rss) >= 8 else (0.0, 0.0, 0.0)
    ok = growth <= args.slack_mb and s_growth <= args.slack_mb
    summary = {"bundle": str(args.bundle), "backend": args.backend, "memory": args.memory,
               "predictions": done, "images": args.images, "frames": len(stream_rss),
               "images_rss_ref_mb": ref, "images_rss_final_mb": final, "images_growth_mb": growth,
               "stream_rss_ref_mb": s_ref, "stream_rss_final_mb": s_final, "stream_growth_mb": s_growth,
               "peak_mb": process_peak_rss_mb(), "slack_mb": args.slack_mb, "ok": ok,
               "seconds": time.perf_counter() - start, "load_avg_1m": os.getloadavg()[0]}
    if args.csv is not None:
        with open(args.csv, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))
    print(f"{'OK' if ok else 'GREW'}: images {ref:.0f} -> {final:.0f} MB ({growth:+.1f}), stream "
          f"{s_ref:.0f} -> {s_final:.0f} MB ({s_growth:+.1f}); slack {args.slack_mb:.0f} MB")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
