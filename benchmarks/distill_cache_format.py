"""Does the int8 teacher cache cost student quality? fp16 vs int8 storage, everything else equal.

The trained embedded ``edgesam-demo`` model is the teacher (128 px synthetic scenes); a fresh
``edgesam_demo`` student (same seed for both formats) runs phase 1 (encoder MSE) for ``--steps``
steps on embeddings read from an fp16 or an int8 cache, then is evaluated on held-out scenes:
mIoU against the teacher's masks and against ground truth, box and centre-point prompts. Also
reports the int8 cache's embedding error against fp16 (cosine, relative L2) and bytes per image.

    nice -n 10 python benchmarks/distill_cache_format.py --train 256 --val 40 --steps 150 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--train", type=int, default=256)
    p.add_argument("--val", type=int, default=40)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--jsonl", default=None)
    args = p.parse_args()

    import numpy as np
    import torch

    from edgesam import load_model
    from edgesam.distillation.datasets import SyntheticSceneDataset, dataset_keys
    from edgesam.distillation.demo_config import DEMO_SCENES
    from edgesam.distillation.evaluate import evaluate
    from edgesam.distillation.pipeline import cache_embeddings, distill_encoder
    from edgesam.distillation.train import TrainConfig
    from edgesam.models.registry import build_sam

    torch.set_num_threads(args.threads)
    load = [round(x, 2) for x in os.getloadavg()]
    teacher = load_model("edgesam-demo").float().eval()
    train = SyntheticSceneDataset(args.train, image_size=128, seed=20_000_000, config=DEMO_SCENES)
    val = SyntheticSceneDataset(args.val, image_size=128, seed=30_000_000, config=DEMO_SCENES)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        caches = {}
        for fmt in ("fp16", "int8"):
            t0 = time.time()
            caches[fmt], _ = cache_embeddings(teacher, train, tmp, storage=fmt, batch_size=16, device="cpu")
            caches[fmt].cache_seconds = time.time() - t0
        keys = dataset_keys(train)
        a = np.stack([caches["fp16"].get(k)[0] for k in keys]).astype(np.float32).reshape(len(keys), -1)
        b = np.stack([caches["int8"].get(k)[0] for k in keys]).astype(np.float32).reshape(len(keys), -1)
        cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        rel = np.linalg.norm(a - b, axis=1) / np.linalg.norm(a, axis=1)
        for fmt, cache in caches.items():
            torch.manual_seed(1)
            student = build_sam("edgesam_demo")
            cfg = TrainConfig(out_dir=f"{tmp}/run-{fmt}", steps=args.steps, batch_size=args.batch_size, lr=2e-3,
                              min_lr=4e-5, warmup_steps=max(1, args.steps // 20), progress=False, device="cpu",
                              checkpoint_every=10 ** 6)
            t0 = time.time()
            res = distill_encoder(student, teacher, train, cache, cfg)
            train_s = time.time() - t0
            ev = evaluate(student, val, teacher=teacher)
            rows.append({"kind": "cache_format", "format": fmt, "bytes_per_image": cache.bytes_per_image(),
                         "phase1_steps": args.steps, "phase1_final_loss": round(res.final_loss, 5),
                         "train_s": round(train_s, 1), **{k: round(v, 4) for k, v in ev.items()}})
            print(json.dumps(rows[-1]), flush=True)
    meta = {"kind": "meta", "benchmark": "distill_cache_format", "date": time.strftime("%Y-%m-%d %H:%M"),
            "train_scenes": args.train, "val_scenes": args.val, "threads": args.threads, "loadavg_before": load,
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "int8_vs_fp16_min_cosine": round(float(cos.min()), 6), "int8_vs_fp16_max_rel_error": round(float(rel.max()), 5),
            "int8_vs_fp16_mean_rel_error": round(float(rel.mean()), 5)}
    print(json.dumps(meta))
    if args.jsonl:
        with open(args.jsonl, "a") as f:
            for row in [meta, *rows]:
                f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
