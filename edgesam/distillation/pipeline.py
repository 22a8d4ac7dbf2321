"""High-level steps of a distillation run: load the teacher, cache its embeddings, train, save.

Typical use (a folder of images, a SAM teacher, a TinyViT ``vit_t`` student)::

    teacher = load_teacher("sam_vit_h_4b8939.pth", arch="vit_h")
    cache = cache_embeddings(teacher, ImageFolderDataset("imgs/", image_size=1024), "cache/")
    student = build_sam("vit_t")
    distill_encoder(student, teacher, dataset, cache, TrainConfig(out_dir="run/phase1"))
    distill_prompt_in_the_loop(student, teacher, dataset, cache, TrainConfig(out_dir="run/phase2"))
    save_sam(student, "run/student.safetensors")   # loads with edgesam.load_model
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..hub import load_model
from ..models.sam import Sam
from .datasets import WithTeacherEmbeddings
from .objectives import EncoderDistillation, PromptInTheLoop, SupervisedSam, copy_decoder
from .teacher_cache import CacheBuildStats, TeacherCache, state_dict_hash
from .train import TrainConfig, TrainResult, train_loop

__all__ = [
    "load_teacher",
    "cache_embeddings",
    "train_supervised",
    "distill_encoder",
    "distill_prompt_in_the_loop",
    "save_sam",
]


def load_teacher(path_or_name: str | os.PathLike[str], *, arch: str | None = None) -> Sam:
    """Load a teacher with :func:`edgesam.load_model`; a checkpoint of another ``arch`` is refused."""
    return load_model(path_or_name, arch=arch).eval()


def cache_embeddings(
    teacher: Sam,
    dataset: Dataset,
    root: str | os.PathLike[str],
    *,
    batch_size: int = 8,
    shard_size: int = 256,
    stop_after: int | None = None,
) -> tuple[TeacherCache, CacheBuildStats]:
    """Compute the teacher embeddings of every readable image of ``dataset`` not cached yet."""
    cache = TeacherCache(root, teacher_hash=state_dict_hash(teacher), image_size=teacher.image_size,
                         shard_size=shard_size)
    paths = getattr(dataset, "paths", None)

    def items():
        for i in range(len(dataset)):  # type: ignore[arg-type]
            path = paths[i] if paths is not None else None
            if path is not None and path in cache:  # skip decoding images that are cached already
                yield path, None, (0, 0)
                continue
            sample = dataset[i]
            if sample is None:
                yield (path or f"<unreadable #{i}>"), None, None
            else:
                yield sample["path"], sample["image"], tuple(int(v) for v in sample["input_size"])

    teacher.eval()
    stats = cache.build(items(), teacher.encode, batch_size=batch_size, stop_after=stop_after)
    return cache, stats


def train_supervised(model: Sam, dataset: Dataset, config: TrainConfig, **objective_kwargs) -> TrainResult:
    """Train a whole SAM from ground-truth masks (the demo's teacher)."""
    config.extra.setdefault("phase", "supervised")
    return train_loop(SupervisedSam(model, **objective_kwargs), dataset, config, trained=model)


def distill_encoder(
    student: Sam, teacher: Sam, dataset: Dataset, cache: TeacherCache, config: TrainConfig
) -> TrainResult:
    """Phase 1: the student's encoder regresses cached teacher embeddings; its decoder is the teacher's."""
    config.extra.setdefault("phase", "encoder")
    copy_decoder(student, teacher, freeze=True)
    return train_loop(EncoderDistillation(student), WithTeacherEmbeddings(dataset, cache), config, trained=student)


def distill_prompt_in_the_loop(
    student: Sam, teacher: Sam, dataset: Dataset, cache: TeacherCache, config: TrainConfig, **objective_kwargs
) -> TrainResult:
    """Phase 2: decoder-aware distillation with box/point prompts and refinement points."""
    config.extra.setdefault("phase", "prompt")
    objective = PromptInTheLoop(student, teacher, **objective_kwargs)
    return train_loop(objective, WithTeacherEmbeddings(dataset, cache), config, trained=student)


def save_sam(model: Sam, path: str | os.PathLike[str], *, half: bool = False) -> Path:
    """Save ``model`` in the SAM state-dict layout (``.safetensors`` with arch metadata, else ``.pth``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
             for k, v in model.state_dict().items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path), metadata={"arch": model.arch, "image_size": str(model.image_size),
                                              "format": "pt"})
    else:
        torch.save(state, path)
    return path
