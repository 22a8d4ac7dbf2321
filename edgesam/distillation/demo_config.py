"""Settings of the synthetic distillation demo (torch-free, so the CLI can describe them anywhere)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from ..scenes import SceneConfig

#: Scene distribution of the demo: 128x96 images (the 128-px model input is padded at the bottom).
DEMO_SCENES = SceneConfig(height=96, width=128, min_objects=1, max_objects=5, min_size=0.12, max_size=0.32,
                          min_visible_area=48)
ASSET = Path(__file__).resolve().parent.parent / "assets" / "edgesam-demo.safetensors"


@dataclass
class DemoConfig:
    """Sizes of the demo run (defaults: about 50 minutes on one quiet CPU core, more on a loaded one)."""

    out: str = "runs/demo"
    train_scenes: int = 4000
    val_scenes: int = 150
    teacher_steps: int = 3600
    phase1_steps: int = 1000
    phase2_steps: int = 1500
    batch_size: int = 8
    max_prompts: int = 6
    teacher_decode_iters: int = 1
    num_workers: int = 0
    seed: int = 0
    threads: int = 1  # one thread: on a shared 2-core machine, more threads oversubscribe badly
    install: bool = False


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of the demo (shared by ``python -m`` and the ``edgesam distill --demo`` CLI)."""
    d = DemoConfig()
    p.add_argument("--out", default=d.out, help="output folder (re-run to resume)")
    for name in ("train_scenes", "val_scenes", "teacher_steps", "phase1_steps", "phase2_steps",
                 "batch_size", "max_prompts", "teacher_decode_iters", "num_workers", "seed", "threads"):
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=getattr(d, name))
    p.add_argument("--install", action="store_true", help="copy the student into edgesam/assets")
