"""End-to-end proof on synthetic scenes: train a small teacher from ground truth, distill a student.

    python -m edgesam.distillation.demo --out runs/demo

1. writes training and held-out scenes in COCO layout (``out/data``),
2. trains the ``synthetic_teacher`` SAM from ground-truth masks,
3. caches its embeddings, distills the ``edgesam_demo`` student (phase 1: encoder MSE,
   phase 2: prompt-in-the-loop with the teacher's frozen decoder),
4. evaluates both on the held-out scenes (``out/results.json``) and writes the fp16 student
   (``out/edgesam-demo.safetensors``; ``--install`` also copies it into ``edgesam/assets``).

Every step resumes: finished steps are skipped and interrupted trainings continue from their
last checkpoint when the command is run again.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import torch

from ..models.registry import build_sam
from .datasets import CocoDataset
from .evaluate import evaluate, ratio_summary
from .pipeline import (
    cache_embeddings,
    distill_encoder,
    distill_prompt_in_the_loop,
    load_teacher,
    save_sam,
    train_supervised,
)
from .scene_writer import write_coco_scenes
from .demo_config import ASSET, DEMO_SCENES, DemoConfig, add_demo_arguments
from .train import TrainConfig

__all__ = ["DemoConfig", "DEMO_SCENES", "run_demo", "main"]



def _write_scenes(cfg: DemoConfig, root: Path) -> tuple[Path, Path]:
    train, val = root / "train", root / "val"
    if not (train / "instances.json").is_file():
        write_coco_scenes(train, cfg.train_scenes, seed=cfg.seed, config=DEMO_SCENES)
    if not (val / "instances.json").is_file():
        write_coco_scenes(val, cfg.val_scenes, seed=cfg.seed + 10_000_000, config=DEMO_SCENES)
    return train, val


def _train_config(cfg: DemoConfig, out: Path, steps: int, lr: float, **kw) -> TrainConfig:
    return TrainConfig(out_dir=str(out), steps=steps, batch_size=cfg.batch_size, lr=lr, min_lr=lr * 0.02,
                       warmup_steps=max(1, steps // 20), seed=cfg.seed, num_workers=cfg.num_workers,
                       checkpoint_every=100, log_every=10, **kw)


def run_demo(cfg: DemoConfig) -> dict:
    """Run (or resume) the whole demo; returns the figures also written to ``out/results.json``."""
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    timings_path = out / "timings.json"
    timings: dict[str, float] = json.loads(timings_path.read_text()) if timings_path.is_file() else {}

    def timed(name: str, fn):
        t0 = time.time()
        result = fn()
        timings[name] = timings.get(name, 0.0) + time.time() - t0
        timings_path.write_text(json.dumps(timings, indent=1))
        return result

    train_dir, val_dir = timed("scenes", lambda: _write_scenes(cfg, out / "data"))
    train_set = CocoDataset(train_dir / "images", train_dir / "instances.json", image_size=128)
    val_set = CocoDataset(val_dir / "images", val_dir / "instances.json", image_size=128)

    teacher_file = out / "teacher.safetensors"
    if not teacher_file.is_file():
        torch.manual_seed(cfg.seed)  # the initial weights are part of the reproducible result
        teacher = build_sam("synthetic_teacher")
        timed("teacher", lambda: train_supervised(
            teacher, train_set, _train_config(cfg, out / "teacher", cfg.teacher_steps, 2e-3),
            max_prompts=cfg.max_prompts, decode_iters=cfg.teacher_decode_iters))
        save_sam(teacher, teacher_file)
    teacher = load_teacher(teacher_file, arch="synthetic_teacher")

    cache, _ = timed("cache", lambda: cache_embeddings(teacher, train_set, out / "cache", batch_size=16))

    student_file = out / "edgesam-demo.safetensors"
    torch.manual_seed(cfg.seed + 1)
    student = build_sam("edgesam_demo")
    p1 = out / "phase1"
    timed("phase1", lambda: distill_encoder(student, teacher, train_set, cache,
                                            _train_config(cfg, p1, cfg.phase1_steps, 2e-3)))
    timed("phase2", lambda: distill_prompt_in_the_loop(
        student, teacher, train_set, cache, _train_config(cfg, out / "phase2", cfg.phase2_steps, 5e-4),
        max_prompts=cfg.max_prompts))  # every token and the IoU head (the teacher trains all four)
    save_sam(student, student_file, half=True)

    # Evaluate the fp16 file as users get it, against the teacher as saved.
    shipped = load_teacher(student_file, arch="edgesam_demo")
    t0 = time.time()
    res = evaluate(shipped, val_set, teacher=teacher)
    res.update(ratio_summary(res))
    timings["eval"] = time.time() - t0
    res["timings_s"] = timings
    res["student_file_bytes"] = student_file.stat().st_size
    (out / "results.json").write_text(json.dumps(res, indent=1))
    timings_path.write_text(json.dumps(timings, indent=1))
    if cfg.install:
        ASSET.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(student_file, ASSET)
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgesam.distillation.demo", description=__doc__.split("\n")[0])
    add_demo_arguments(p)
    args = p.parse_args(argv)
    cfg = DemoConfig(**{k: v for k, v in vars(args).items()})
    res = run_demo(cfg)
    print(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
