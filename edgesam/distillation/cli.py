"""``edgesam distill`` and ``edgesam eval``: parsers whose ``func(args) -> int`` runs the command.

    edgesam distill sam_vit_h_4b8939.pth --teacher-arch vit_h --student-arch vit_t \\
        --images my_robot_frames/ -o runs/robot               # phase 1 (+ phase 2 with labels)
    edgesam distill --demo -o runs/demo                         # synthetic proof, CPU minutes
    edgesam eval runs/robot/student.safetensors --teacher sam_vit_h --coco val/images val/instances.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["add_distill_parser", "add_eval_parser", "run_distill", "run_eval"]


def _add_data_arguments(p: argparse.ArgumentParser, *, required: bool) -> None:
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--images", metavar="DIR", help="folder of unlabelled images (any jpg/png, recursive)")
    g.add_argument("--coco", nargs=2, metavar=("IMAGE_DIR", "ANNOTATIONS"), help="COCO layout")
    g.add_argument("--sa1b", metavar="DIR", help="SA-1B layout (image + per-image JSON with RLE)")
    g.add_argument("--synthetic", type=int, metavar="N", help="N generated scenes (seeds from --seed)")


def _dataset(args: argparse.Namespace, image_size: int) -> Any:
    from .datasets import CocoDataset, ImageFolderDataset, SA1BDataset, SyntheticSceneDataset

    if args.images:
        return ImageFolderDataset(args.images, image_size=image_size)
    if args.coco:
        return CocoDataset(args.coco[0], args.coco[1], image_size=image_size)
    if args.sa1b:
        return SA1BDataset(args.sa1b, image_size=image_size)
    from .demo_config import DEMO_SCENES

    return SyntheticSceneDataset(args.synthetic, image_size=image_size, seed=args.seed + 10_000_000, config=DEMO_SCENES)


def add_distill_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``distill`` on an ``argparse`` sub-parser collection."""
    from .demo_config import add_demo_arguments

    p = subparsers.add_parser("distill", help="distill a lightweight student from a SAM teacher",
                              description="Two-phase distillation: encoder MSE on cached teacher embeddings, "
                                          "then prompt-in-the-loop (needs masks: --coco/--sa1b, or teacher masks).")
    p.add_argument("--demo", action="store_true", help="run the synthetic end-to-end proof instead")
    p.add_argument("--teacher", help="teacher checkpoint path or zoo name")
    p.add_argument("--teacher-arch", help="expected teacher arch: vit_h, vit_l or vit_b (another is refused)")
    p.add_argument("--student-arch", default="vit_t", help="student arch: vit_t (MobileSAM) or edge_sam")
    p.add_argument("--image-size", type=int, default=None, help="model input side (default: the teacher's)")
    _add_data_arguments(p, required=False)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--phase2-lr", type=float, default=2e-4)
    p.add_argument("--clip-grad", type=float, default=1.0)
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--no-resume", action="store_true", help="start again even if checkpoints exist")
    p.add_argument("--override", action="store_true",
                   help="resume a checkpoint written with other settings, continuing with the new ones")
    p.add_argument("--device", default="auto", help="teacher and training device (default: cuda when present)")
    p.add_argument("--cache-dir", default=None,
                   help="teacher embedding cache, shared by every student (default: $EDGESAM_CACHE_DIR or "
                        "~/.cache/edgesam/teacher-embeddings)")
    p.add_argument("--cache-batch-size", type=int, default=None,
                   help="teacher batch while caching (default: 1 on CPU, 8 on CUDA; halved on out-of-memory)")
    p.add_argument("--cache-format", choices=("fp16", "int8"), default="fp16",
                   help="stored embedding precision (int8: per-channel scale, half the bytes)")
    p.add_argument("--shard-size", type=int, default=16, help="embeddings per cache shard (default 16)")
    p.add_argument("--teacher-precision", choices=("fp32", "bf16", "fp16", "auto"), default="auto",
                   help="teacher autocast while caching, checked against fp32 on the first batch (default "
                        "auto: bf16 on CPU / fp16 on CUDA when within tolerance, else fp32)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    add_demo_arguments(p)
    p.set_defaults(func=run_distill, out=None)  # --out is required, except for --demo
    return p


def run_distill(args: argparse.Namespace) -> int:
    """Run ``edgesam distill``; prints a JSON summary (see :mod:`edgesam.distillation.run`)."""
    if args.demo:
        from .demo import DemoConfig, run_demo

        fields = DemoConfig.__dataclass_fields__
        values = {k: getattr(args, k) for k in fields}
        values["out"] = args.out or DemoConfig().out
        res = run_demo(DemoConfig(**values))
        print(json.dumps(res, indent=1))
        return 0
    from .run import run_distill as run

    return run(args)


def add_eval_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``eval`` on an ``argparse`` sub-parser collection."""
    p = subparsers.add_parser("eval", help="mIoU vs ground truth (and a teacher) with box / point prompts")
    p.add_argument("--model", required=True, help="checkpoint path or model name (e.g. edgesam-demo)")
    p.add_argument("--arch", default=None, help="expected arch of --model")
    p.add_argument("--teacher", default=None, help="optional teacher checkpoint or name")
    p.add_argument("--teacher-arch", default=None)
    _add_data_arguments(p, required=True)
    p.add_argument("--seed", type=int, default=0, help="first scene seed offset for --synthetic")
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--prompts", default="box,point", help="comma-separated: box, point")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="where model and teacher run (cpu, cuda, cuda:1, auto)")
    p.add_argument("--json", action="store_true", help="print JSON only")
    p.set_defaults(func=run_eval)
    return p


def run_eval(args: argparse.Namespace) -> int:
    """Run ``edgesam eval``; prints the mIoU figures."""
    import torch

    from .evaluate import evaluate, ratio_summary
    from .pipeline import load_teacher
    from .trainer import resolve_device

    if args.images:
        raise ValueError("eval needs ground-truth masks: use --coco, --sa1b or --synthetic")
    torch.set_num_threads(max(1, args.threads))
    device = resolve_device(args.device)
    model = load_teacher(args.model, arch=args.arch).to(device)
    teacher = load_teacher(args.teacher, arch=args.teacher_arch).to(device) if args.teacher else None
    if teacher is not None and teacher.image_size != model.image_size:
        raise ValueError(f"model input {model.image_size} and teacher input {teacher.image_size} differ")
    kinds = tuple(k.strip() for k in args.prompts.split(",") if k.strip())
    res = evaluate(model, _dataset(args, model.image_size), teacher=teacher, prompt_kinds=kinds,
                   max_images=args.max_images)
    res.update(ratio_summary(res, kinds))
    from ..io import json_safe

    print(json.dumps(json_safe(res), indent=1) if args.json else "\n".join(f"{k:24s} {v:.4f}" for k, v in res.items()))
    return 0
