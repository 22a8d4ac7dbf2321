"""What ``edgesam distill`` does: check every flag, cache the teacher, train both phases, save, report.

Everything that can be checked without the teacher is checked first (architectures, sizes,
output folder, the data: an empty folder is named and nothing is written), so a mistake never
surfaces after an hour of caching. Under ``torchrun`` every rank caches its slice of the images
and trains its slice of each batch; rank 0 alone saves the student and prints the summary
(losses averaged over ranks). Ctrl-C / SIGTERM during training saves a checkpoint; during
caching every committed shard is kept. Either way the same command continues the run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..io import json_safe

__all__ = ["STUDENT_ARCHS", "TEACHER_ARCHS", "default_cache_dir", "check_arch", "run_distill"]

#: Architectures offered on the command line (the registry also holds internal ones, e.g. the demo's).
STUDENT_ARCHS = ("vit_t", "edge_sam")
TEACHER_ARCHS = ("vit_h", "vit_l", "vit_b")


def default_cache_dir() -> Path:
    """``$EDGESAM_CACHE_DIR`` or ``$XDG_CACHE_HOME/edgesam/teacher-embeddings`` (``~/.cache`` by default)."""
    from ..runtimes.cache import user_cache_root

    if os.environ.get("EDGESAM_CACHE_DIR"):
        return Path(os.environ["EDGESAM_CACHE_DIR"])
    return user_cache_root() / "teacher-embeddings"


def check_arch(flag: str, arch: str | None, public: tuple[str, ...]) -> None:
    """Unknown ``arch`` -> ValueError listing the public choices (registered internal archs pass)."""
    from ..models.registry import MODELS

    if arch is not None and arch not in MODELS:
        raise ValueError(f"unknown {flag} {arch!r}; choose one of: {', '.join(public)}")


def _check_flags(args: argparse.Namespace) -> None:
    if not args.out:
        raise ValueError("give -o/--out DIR: the run folder (checkpoints, logs and the student)")
    if not args.teacher:
        raise ValueError("give the teacher as MODEL: a checkpoint file or a model name (`edgesam distill TEACHER ...`)")
    if not (args.images or args.coco or args.sa1b or args.synthetic):
        raise ValueError("distill needs one of --images/--coco/--sa1b/--synthetic (or --demo)")
    check_arch("--student-arch", args.student_arch, STUDENT_ARCHS)
    check_arch("--teacher-arch", args.teacher_arch, TEACHER_ARCHS)
    for flag in ("batch_size", "threads", "max_prompts", "shard_size", "checkpoint_every"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    for flag in ("phase1_steps", "phase2_steps", "num_workers"):
        if getattr(args, flag) < 0:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 0, got {getattr(args, flag)}")
    if args.cache_batch_size is not None and args.cache_batch_size < 1:
        raise ValueError(f"--cache-batch-size must be >= 1, got {args.cache_batch_size}")
    if args.image_size is not None and (args.image_size <= 0 or args.image_size % 64):
        raise ValueError(f"--image-size must be a positive multiple of 64, got {args.image_size}")
    if not (args.lr > 0 and args.phase2_lr > 0):
        raise ValueError("--lr and --phase2-lr must be > 0")
    if args.images and not Path(args.images).is_dir():
        raise ValueError(f"--images {args.images}: no such folder")
    if args.coco:
        for what, path, ok in (("image folder", args.coco[0], Path(args.coco[0]).is_dir()),
                               ("annotation file", args.coco[1], Path(args.coco[1]).is_file())):
            if not ok:
                raise ValueError(f"--coco {what} {path} does not exist")
    if args.sa1b and not Path(args.sa1b).is_dir():
        raise ValueError(f"--sa1b {args.sa1b}: no such folder")
    if args.synthetic is not None and args.synthetic < 1:
        raise ValueError(f"--synthetic needs at least one scene, got {args.synthetic}")


def _check_dataset(args: argparse.Namespace, dataset: Any) -> None:
    from .datasets import IMAGE_EXTENSIONS

    if len(dataset) == 0:
        where = args.images or args.sa1b or (args.coco and args.coco[0])
        what = " with a .json beside it" if args.sa1b else ""
        raise ValueError(f"{where} contains no images{what} ({', '.join(IMAGE_EXTENSIONS)}); nothing was written")
    if len(dataset) < args.batch_size:
        raise ValueError(f"the dataset has {len(dataset)} images, fewer than one batch of --batch-size "
                         f"{args.batch_size}")


def _check_decoders(student: Any, teacher: Any) -> None:
    """The student takes over the teacher's prompt encoder and decoder: their shapes must agree."""
    for part in ("prompt_encoder", "mask_decoder"):
        a, b = getattr(student, part).state_dict(), getattr(teacher, part).state_dict()
        bad = [k for k in a if k not in b or a[k].shape != b[k].shape] + [k for k in b if k not in a]
        if bad:
            raise ValueError(f"--student-arch {student.arch} cannot take the {teacher.arch} teacher's {part} "
                             f"(e.g. {bad[0]} differs); pick a student with the same decoder")


def _report_failed(failed: list[str], total: int) -> None:
    if failed:
        first = ", ".join(failed[:5]) + (", ..." if len(failed) > 5 else "")
        print(f"edgesam distill: {len(failed)} of {total} images could not be read and were skipped: {first}",
              file=sys.stderr)


def run_distill(args: argparse.Namespace) -> int:
    """Run ``edgesam distill`` (see the module docstring); prints a JSON summary on rank 0."""
    from .cli import _dataset

    _check_flags(args)
    import torch

    from ..models.registry import build_sam, get_spec
    from .pipeline import cache_embeddings, distill_encoder, distill_prompt_in_the_loop, load_teacher, save_sam
    from ..bundle import sha256_file
    from .teacher_cache import state_dict_hash
    from .train import TrainConfig, dist_info
    from .trainer import TrainingInterrupted, resolve_device

    rank, local_rank, _ = dist_info()
    device = resolve_device(args.device, local_rank)
    size = args.image_size or (get_spec(args.teacher_arch).image_size if args.teacher_arch else None)
    dataset = _dataset(args, size or 1024)
    _check_dataset(args, dataset)
    torch.set_num_threads(max(1, args.threads))

    teacher = load_teacher(args.teacher, arch=args.teacher_arch)
    if (args.image_size or teacher.image_size) != teacher.image_size:
        raise ValueError(f"--image-size {args.image_size} differs from the teacher's input size {teacher.image_size}")
    if dataset.image_size != teacher.image_size:
        dataset = _dataset(args, teacher.image_size)
    size = teacher.image_size
    torch.manual_seed(args.seed)  # the student's initial weights are a function of --seed
    student = build_sam(args.student_arch, image_size=size)
    _check_decoders(student, teacher)
    teacher_hash = sha256_file(args.teacher) if Path(args.teacher).is_file() else state_dict_hash(teacher)
    cache_dir = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    out = Path(args.out)
    try:
        cache, stats = cache_embeddings(
            teacher, dataset, cache_dir, batch_size=args.cache_batch_size, shard_size=args.shard_size,
            storage=args.cache_format, teacher_hash=teacher_hash, device=device,
            precision=args.teacher_precision, progress=not args.quiet)
    except KeyboardInterrupt:
        print(f"edgesam distill: interrupted while caching; every completed shard is kept in {cache_dir}: "
              "run the same command to continue", file=sys.stderr)
        return 130
    if rank == 0:
        _report_failed(stats.failed_files, len(dataset))
    teacher.image_encoder = torch.nn.Identity()  # cached: training needs only its prompt encoder and decoder
    usable = sum(1 for k in cache.keys_of(dataset) or [] if k is not None and k in cache)
    if usable < args.batch_size:
        raise ValueError(f"only {usable} of {len(dataset)} images could be read, fewer than one batch of "
                         f"--batch-size {args.batch_size}")

    extra = {"student_arch": student.arch, "teacher": teacher_hash[:16], "image_size": size,
             "cache_format": args.cache_format, "max_prompts": args.max_prompts}

    def config(phase: str, steps: int, lr: float) -> TrainConfig:
        return TrainConfig(out_dir=str(out / phase), steps=steps, batch_size=args.batch_size, lr=lr,
                           min_lr=lr * 0.01, warmup_steps=max(1, steps // 20), clip_grad=args.clip_grad,
                           seed=args.seed, num_workers=args.num_workers, checkpoint_every=args.checkpoint_every,
                           resume=not args.no_resume, override=args.override, device=str(device),
                           progress=not args.quiet, extra={"phase": phase, **extra})

    cache_summary = {"dir": str(cache.dir), "images": len(dataset), "computed": stats.computed,
                     "already_cached": stats.already_cached, "failed": stats.failed,
                     "bytes_per_image": stats.bytes_per_image, "format": args.cache_format,
                     "batch_size": stats.batch_size, "teacher_precision": stats.teacher_precision}
    summary: dict[str, Any] = {"cache": cache_summary}
    try:
        r1 = distill_encoder(student, teacher, dataset, cache, config("phase1", args.phase1_steps, args.lr))
        summary["phase1"] = {"steps": r1.steps, "loss": r1.final_loss, "seconds": round(r1.seconds, 2)}
        skipped = dict(r1.skipped_by_path)
        if args.phase2_steps > 0:
            r2 = distill_prompt_in_the_loop(student, teacher, dataset, cache,
                                            config("phase2", args.phase2_steps, args.phase2_lr),
                                            max_prompts=args.max_prompts)
            summary["phase2"] = {"steps": r2.steps, "loss": r2.final_loss, "seconds": round(r2.seconds, 2)}
            skipped.update(r2.skipped_by_path)
    except TrainingInterrupted as exc:
        if rank == 0:
            print(f"edgesam distill: {exc}; run the same command to resume", file=sys.stderr)
        return 130
    # dropped when the annotation file was read + undecodable ones, once per image trained on
    summary["skipped_annotations"] = int(getattr(dataset, "skipped_annotations", 0)) + sum(skipped.values())
    if rank == 0:
        summary["student"] = str(save_sam(student, out / "student.safetensors"))
        print(json.dumps(json_safe(summary), indent=1))
    return 0
