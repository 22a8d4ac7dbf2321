"""``edgesam distill`` and ``edgesam eval``: parsers whose ``func(args) -> int`` runs the command.

    edgesam distill --teacher sam_vit_h_4b8939.pth --teacher-arch vit_h --student-arch vit_t \\
        --images my_robot_frames/ --out runs/robot            # phase 1 (+ phase 2 with labels)
    edgesam distill --demo --out runs/demo                      # synthetic proof, CPU minutes
    edgesam eval --model runs/robot/student.safetensors --teacher sam_vit_h --coco val/images val/instances.json
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
    p.add_argument("--teacher-arch", help="expected teacher arch (a checkpoint of another arch is refused)")
    p.add_argument("--student-arch", default="vit_t", help="student arch from the model registry")
    p.add_argument("--image-size", type=int, default=None, help="model input side (default: the teacher's)")
    _add_data_arguments(p, required=False)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--phase2-lr", type=float, default=2e-4)
    p.add_argument("--clip-grad", type=float, default=1.0)
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--no-resume", action="store_true", help="start again even if checkpoints exist")
    add_demo_arguments(p)
    p.set_defaults(func=run_distill)
    return p


def run_distill(args: argparse.Namespace) -> int:
    """Run ``edgesam distill``; prints a JSON summary."""
    if args.demo:
        from .demo import DemoConfig, run_demo

        fields = DemoConfig.__dataclass_fields__
        res = run_demo(DemoConfig(**{k: getattr(args, k) for k in fields}))
        print(json.dumps(res, indent=1))
        return 0
    if not args.teacher or not (args.images or args.coco or args.sa1b or args.synthetic):
        raise ValueError("distill needs --teacher and one of --images/--coco/--sa1b/--synthetic (or --demo)")
    import torch

    from ..models.registry import build_sam
    from .pipeline import cache_embeddings, distill_encoder, distill_prompt_in_the_loop, load_teacher, save_sam
    from .train import TrainConfig

    torch.set_num_threads(max(1, args.threads))
    teacher = load_teacher(args.teacher, arch=args.teacher_arch)
    size = args.image_size or teacher.image_size
    if size != teacher.image_size:
        raise ValueError(f"--image-size {size} differs from the teacher's input size {teacher.image_size}")
    dataset = _dataset(args, size)
    out = Path(args.out)
    cache, stats = cache_embeddings(teacher, dataset, out / "teacher_cache")
    student = build_sam(args.student_arch, image_size=size)

    def config(phase: str, steps: int, lr: float) -> TrainConfig:
        return TrainConfig(out_dir=str(out / phase), steps=steps, batch_size=args.batch_size, lr=lr,
                           min_lr=lr * 0.01, warmup_steps=max(1, steps // 20), clip_grad=args.clip_grad,
                           seed=args.seed, num_workers=args.num_workers, checkpoint_every=args.checkpoint_every,
                           resume=not args.no_resume)

    r1 = distill_encoder(student, teacher, dataset, cache, config("phase1", args.phase1_steps, args.lr))
    summary: dict[str, Any] = {"cache": vars(stats), "phase1_loss": r1.final_loss,
                               "skipped_images": r1.skipped_images}
    if args.phase2_steps > 0:
        r2 = distill_prompt_in_the_loop(student, teacher, dataset, cache,
                                        config("phase2", args.phase2_steps, args.phase2_lr),
                                        max_prompts=args.max_prompts)
        summary.update(phase2_loss=r2.final_loss, skipped_annotations=r2.skipped_annotations)
    summary["student"] = str(save_sam(student, out / "student.safetensors"))
    print(json.dumps(summary, indent=1))
    return 0


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
    p.add_argument("--json", action="store_true", help="print JSON only")
    p.set_defaults(func=run_eval)
    return p


def run_eval(args: argparse.Namespace) -> int:
    """Run ``edgesam eval``; prints the mIoU figures."""
    import torch

    from .evaluate import evaluate, ratio_summary
    from .pipeline import load_teacher

    if args.images:
        raise ValueError("eval needs ground-truth masks: use --coco, --sa1b or --synthetic")
    torch.set_num_threads(max(1, args.threads))
    model = load_teacher(args.model, arch=args.arch)
    teacher = load_teacher(args.teacher, arch=args.teacher_arch) if args.teacher else None
    if teacher is not None and teacher.image_size != model.image_size:
        raise ValueError(f"model input {model.image_size} and teacher input {teacher.image_size} differ")
    kinds = tuple(k.strip() for k in args.prompts.split(",") if k.strip())
    res = evaluate(model, _dataset(args, model.image_size), teacher=teacher, prompt_kinds=kinds,
                   max_images=args.max_images)
    res.update(ratio_summary(res, kinds))
    print(json.dumps(res, indent=1) if args.json else "\n".join(f"{k:24s} {v:.4f}" for k, v in res.items()))
    return 0
