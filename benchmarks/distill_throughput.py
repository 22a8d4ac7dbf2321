"""Distillation throughput: teacher embeddings per second, student steps per second, and a projection.

* teacher: a seeded official-layout teacher (random weights) caches ``--images`` photos from
  ``skimage.data`` at 1024 px through :meth:`TeacherCache.build` (batch 1, inference mode),
  once per ``--precisions`` entry; per-image seconds exclude the first image (for bf16/fp16 it
  also runs fp32 for the precision check, whose cosine / relative error are reported), peak RSS
  of the measuring process, stored bytes per image.
* student: ``train_loop`` steps at 1024 px, batch ``--batch-size``, phase 1 (encoder MSE) and
  phase 2 (prompt-in-the-loop, teacher masks, ``--max-prompts``), first step excluded.
* projection: EdgeSAM's recipe (1% of SA-1B, ``--project-images`` images): teacher hours on this
  CPU and on ``--gpus`` GPUs (only from a rate measured with ``--device cuda``, else "unmeasured"),
  cache disk per format.

Each measurement runs in its own process (so peak RSS is its own). Results go to stdout and,
with ``--jsonl``, are appended to that file. The machine is shared: record the load.

    nice -n 10 python benchmarks/distill_throughput.py --teachers vit_b,vit_h --images 3 --threads 2 \\
        --jsonl benchmarks/results/distill_throughput.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina")
FULL_GRID_FP16 = 256 * 64 * 64 * 2  # the whole 64x64 grid of a 1024 px teacher, as stored before


def _photos(n: int):
    import numpy as np
    import skimage.data

    for name in (PHOTOS * (n // len(PHOTOS) + 1))[:n]:
        img = np.asarray(getattr(skimage.data, name)())
        img = np.repeat(img[:, :, None], 3, 2) if img.ndim == 2 else img[:, :, :3]
        yield name, np.ascontiguousarray(img)


def _peak_rss_gb() -> float | None:
    from edgesam.bench.timing import process_peak_rss_mb  # this process image's own peak (VmHWM)

    peak = process_peak_rss_mb()
    return None if peak is None else round(peak / 1024, 2)


def measure_teacher(arch: str, precision: str, images: int, device: str = "cpu") -> dict:
    import torch

    from edgesam.distillation.datasets import preprocess_image
    from edgesam.distillation.teacher_cache import CacheItem, TeacherCache, content_key
    from edgesam.distillation.teacher_encode import TeacherEncoder
    from edgesam.models.registry import build_sam

    torch.manual_seed(0)
    teacher = build_sam(arch)
    enc = TeacherEncoder(teacher, device=torch.device(device), precision=precision)
    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = TeacherCache(tmp, teacher_hash=f"{arch}-seed0", image_size=1024, shard_size=16)

        def items():
            for i, (name, img) in enumerate(_photos(images)):
                x, size = preprocess_image(img, 1024)
                yield CacheItem(content_key(f"{i}".encode() + img.tobytes()), name, x, size)

        t0 = time.perf_counter()
        cache.build(items(), enc, batch_size=1, progress=lambda k: stamps.append(time.perf_counter()))
        total = time.perf_counter() - t0
        per_image = (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else total
        return {"kind": "teacher", "arch": arch, "precision": precision, "images": images,
                "seconds_per_image": round(per_image, 2), "embeddings_per_s": round(1 / per_image, 4),
                "first_image_s": round(stamps[0] - t0, 2), "peak_rss_gb": _peak_rss_gb(),
                "bytes_per_image": round(cache.bytes_per_image()), "check": enc.report.as_dict()}


def measure_student(arch: str, steps: int, batch: int, max_prompts: int, device: str = "cpu") -> list[dict]:
    import torch
    from torch.utils.data import Dataset

    from edgesam.distillation.datasets import preprocess_image
    from edgesam.distillation.objectives import EncoderDistillation, PromptInTheLoop, copy_decoder
    from edgesam.distillation.train import TrainConfig, train_loop
    from edgesam.models.registry import build_sam

    samples = []
    gen = torch.Generator().manual_seed(0)
    for name, img in _photos(max(batch, 2)):
        x, (h, w) = preprocess_image(img, 1024)
        samples.append({"image": x, "input_size": torch.tensor([h, w]), "original_size": torch.tensor(img.shape[:2]),
                        "path": name, "skipped_annotations": 0,
                        "teacher_embedding": torch.randn(256, 64, 64, generator=gen).half()})

    class Cached(Dataset):
        def __len__(self):
            return len(samples)

        def __getitem__(self, i):
            return samples[i]

    torch.manual_seed(0)
    decoder_source = build_sam("vit_t")  # every official arch shares this decoder layout
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for phase in ("phase1", "phase2"):
            student = build_sam(arch)
            copy_decoder(student, decoder_source, freeze=True)
            objective = (EncoderDistillation(student) if phase == "phase1"
                         else PromptInTheLoop(student, decoder_source, max_prompts=max_prompts))
            cfg = TrainConfig(out_dir=f"{tmp}/{phase}", steps=steps + 1, batch_size=batch, lr=1e-4, warmup_steps=1,
                              log_every=1, checkpoint_every=10_000, progress=False, device=device)
            train_loop(objective, Cached(), cfg, trained=student)
            import csv

            with open(f"{tmp}/{phase}/log.csv") as f:
                secs = [float(r["seconds"]) for r in csv.DictReader(f)]
            per_step = (secs[-1] - secs[0]) / steps
            rows.append({"kind": "student", "arch": arch, "phase": phase, "batch_size": batch, "steps": steps,
                         "seconds_per_step": round(per_step, 2), "steps_per_s": round(1 / per_step, 4),
                         "images_per_s": round(batch / per_step, 3), "peak_rss_gb": _peak_rss_gb()})
    return rows


def projection(rows: list[dict], images: int, gpus: int) -> dict:
    out: dict = {"images": images, "gpus": gpus}
    for r in rows:
        if r["kind"] == "teacher":
            out[f"{r['arch']}_{r['check']['used']}_cpu_days_one_process"] = round(
                images * r["seconds_per_image"] / 86400, 1)
            if r.get("device", "cpu").startswith("cuda"):
                out[f"{r['arch']}_{r['check']['used']}_hours_on_{gpus}_gpus"] = round(
                    images * r["seconds_per_image"] / gpus / 3600, 2)
            else:
                out.setdefault(f"{r['arch']}_hours_on_{gpus}_gpus", "unmeasured (no GPU rate in this run)")
        if r["kind"] == "teacher":
            out["bytes_per_image_fp16_valid"] = r["bytes_per_image"]
    fp16 = out.get("bytes_per_image_fp16_valid")
    out["disk_gb_full_grid_fp16"] = round(images * FULL_GRID_FP16 / 1e9, 1)
    if fp16:
        channels = 256
        out["disk_gb_valid_fp16"] = round(images * fp16 / 1e9, 1)
        out["disk_gb_valid_int8"] = round(images * (fp16 / 2 + 4 * channels) / 1e9, 1)
    return out


def _child(spec: str, args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    kind, arch, extra = spec.split(":")
    rows = ([measure_teacher(arch, extra, args.images, args.device)] if kind == "teacher"
            else measure_student(arch, args.steps, args.batch_size, args.max_prompts, args.device))
    for row in rows:
        row["device"] = args.device
    print("ROWS " + json.dumps(rows), flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--teachers", default="vit_b,vit_h")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--students", default="vit_t,edge_sam")
    p.add_argument("--images", type=int, default=3, help="photos per teacher measurement")
    p.add_argument("--steps", type=int, default=3, help="timed student steps (after one untimed)")
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--max-prompts", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu or cuda (a GPU rate makes the projection's GPU rows)")
    p.add_argument("--project-images", type=int, default=110_000, help="EdgeSAM: 1%% of SA-1B")
    p.add_argument("--gpus", type=int, default=8)
    p.add_argument("--jsonl", default=None, help="append the result rows to this file")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        _child(args.one, args)
        return 0
    specs = [f"teacher:{a}:{pr}" for a in args.teachers.split(",") if a for pr in args.precisions.split(",")]
    specs += [f"student:{a}:-" for a in args.students.split(",") if a]
    rows: list[dict] = []
    load = [round(x, 2) for x in os.getloadavg()]
    for spec in specs:
        cmd = [sys.executable, __file__, "--one", spec, *sys.argv[1:]]
        done = subprocess.run(cmd, capture_output=True, text=True)
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("ROWS ")), None)
        if line is None:
            print(f"{spec} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        for row in json.loads(line[5:]):
            print(json.dumps(row), flush=True)
            rows.append(row)
    meta = {"kind": "meta", "date": time.strftime("%Y-%m-%d %H:%M"), "cpu": platform.processor() or platform.machine(),
            "threads": args.threads, "loadavg_before": load, "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "note": "shared 2-core machine under load from other jobs; random-weight official layouts"}
    proj = {"kind": "projection", **projection(rows, args.project_images, args.gpus)}
    print(json.dumps(meta))
    print(json.dumps(proj))
    if args.jsonl:
        with open(args.jsonl, "a") as f:
            for row in [meta, *rows, proj]:
                f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
