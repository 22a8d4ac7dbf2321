"""High-level steps of a distillation run: load the teacher, cache its embeddings, train, save.

Typical use (a folder of images, a SAM teacher, a TinyViT ``vit_t`` student)::

    teacher = load_teacher("sam_vit_h_4b8939.pth", arch="vit_h")
    dataset = ImageFolderDataset("imgs/", image_size=1024)
    cache, stats = cache_embeddings(teacher, dataset, "cache/")   # reusable by any student
    student = build_sam("vit_t")
    distill_encoder(student, teacher, dataset, cache, TrainConfig(out_dir="run/phase1"))
    distill_prompt_in_the_loop(student, teacher, dataset, cache, TrainConfig(out_dir="run/phase2"))
    save_sam(student, "run/student.safetensors")   # loads with edgesam.load_model
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import Dataset

from ..hub import load_model
from ..models.sam import Sam
from .datasets import WithTeacherEmbeddings, source_key
from .objectives import EncoderDistillation, PromptInTheLoop, SupervisedSam, copy_decoder
from .teacher_cache import CacheBuildStats, CacheItem, TeacherCache, state_dict_hash
from .teacher_encode import TeacherEncoder, default_cache_batch_size
from .train import TrainConfig, TrainResult, dist_info, train_loop
from .trainer import resolve_device

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


def _init_distributed(device: torch.device) -> tuple[int, int]:
    """``(rank, world)``; joins the torchrun process group when there is one."""
    rank, _, world = dist_info()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world


def _items(dataset: Dataset, indices: range, cache: TeacherCache, keys: dict[int, str | None]):
    for i in indices:
        name, key = source_key(dataset, i)
        keys[i] = key
        if key is None:
            yield CacheItem(None, name, error="missing or empty file")
        elif key in cache:  # cached already: the image is not decoded again
            yield CacheItem(key, name)
        else:
            sample = dataset[i]
            if sample is None:
                yield CacheItem(key, name, error="not a readable image")
            else:
                yield CacheItem(key, name, sample["image"], tuple(int(v) for v in sample["input_size"]))


def cache_embeddings(
    teacher: Sam,
    dataset: Dataset,
    root: str | os.PathLike[str],
    *,
    batch_size: int | None = None,
    shard_size: int = 16,
    storage: str = "fp16",
    teacher_hash: str | None = None,
    device: str | torch.device = "auto",
    precision: str = "fp32",
    stop_after: int | None = None,
    on_shard: Callable[[int], None] | None = None,
    progress: bool = False,
) -> tuple[TeacherCache, CacheBuildStats]:
    """Compute the teacher embeddings of every readable image of ``dataset`` not cached yet.

    Under ``torchrun`` rank ``r`` of ``w`` computes the items ``r::w`` (global rank and world size,
    so it works across nodes on a shared filesystem); rank 0 merges the index after a barrier and
    every rank returns the merged cache and the summed statistics.

    Args:
        root: the cache folder (shared by every student of this teacher).
        batch_size: teacher batch (default :func:`default_cache_batch_size`; halved on out-of-memory).
        shard_size, storage: see :class:`TeacherCache`.
        teacher_hash: identifies the teacher (default: :func:`state_dict_hash`).
        device: where the teacher runs (``"auto"``: CUDA when present).
        precision: see :class:`~edgesam.distillation.teacher_encode.TeacherEncoder`.
        stop_after, on_shard: see :meth:`TeacherCache.build`.

    Returns:
        the cache (with ``cache.keys_of(dataset)`` filled) and the build statistics, whose
        ``teacher_precision`` and ``bytes_per_image`` attributes report the run.
    """
    dev = resolve_device(str(device), dist_info()[1]) if not isinstance(device, torch.device) else device
    rank, world = _init_distributed(dev)
    cache = TeacherCache(root, teacher_hash=teacher_hash or state_dict_hash(teacher), image_size=teacher.image_size,
                         shard_size=shard_size, storage=storage, rank=rank)
    encoder = TeacherEncoder(teacher, device=dev, precision=precision)
    keys: dict[int, str | None] = {}
    n = len(dataset)  # type: ignore[arg-type]
    bar = None
    if progress and rank == 0:
        from tqdm import tqdm

        bar = tqdm(total=len(range(rank, n, world)), desc="teacher cache", dynamic_ncols=True)
    try:
        stats = cache.build(_items(dataset, range(rank, n, world), cache, keys), encoder,
                            batch_size=batch_size or default_cache_batch_size(dev), stop_after=stop_after,
                            on_shard=on_shard, progress=None if bar is None else (lambda k: bar.update(1)))
    finally:
        if bar is not None:
            bar.close()
    if world > 1:
        parts: list = [None] * world
        dist.all_gather_object(parts, (keys, stats))
        keys = {i: k for part_keys, _ in parts for i, k in part_keys.items()}
        stats = parts[0][1].merge_stats(p[1] for p in parts[1:])
        dist.barrier()
        if rank == 0:
            cache.merge()
        dist.barrier()
        cache.refresh()
    else:
        cache.merge()
    cache.remember_keys(dataset, [keys.get(i) for i in range(n)])
    stats.teacher_precision = encoder.report.as_dict()  # type: ignore[attr-defined]
    stats.bytes_per_image = round(cache.bytes_per_image(), 1)  # type: ignore[attr-defined]
    return cache, stats


def train_supervised(model: Sam, dataset: Dataset, config: TrainConfig, **objective_kwargs) -> TrainResult:
    """Train a whole SAM from ground-truth masks (the demo's teacher)."""
    config.extra.setdefault("phase", "supervised")
    return train_loop(SupervisedSam(model, **objective_kwargs), dataset, config, trained=model)


def distill_encoder(
    student: Sam, teacher: Sam, dataset: Dataset, cache: TeacherCache, config: TrainConfig,
    *, on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Phase 1: the student's encoder regresses cached teacher embeddings; its decoder is the teacher's."""
    config.extra.setdefault("phase", "encoder")
    copy_decoder(student, teacher, freeze=True)
    data = WithTeacherEmbeddings(dataset, cache, keys=cache.keys_of(dataset))
    return train_loop(EncoderDistillation(student), data, config, trained=student, on_step=on_step)


def distill_prompt_in_the_loop(
    student: Sam, teacher: Sam, dataset: Dataset, cache: TeacherCache, config: TrainConfig,
    *, on_step: Callable[[int], None] | None = None, **objective_kwargs
) -> TrainResult:
    """Phase 2: decoder-aware distillation with box/point prompts and refinement points."""
    config.extra.setdefault("phase", "prompt")
    objective = PromptInTheLoop(student, teacher, **objective_kwargs)
    data = WithTeacherEmbeddings(dataset, cache, keys=cache.keys_of(dataset))
    return train_loop(objective, data, config, trained=student, on_step=on_step)


def save_sam(model: Sam, path: str | os.PathLike[str], *, half: bool = False) -> Path:
    """Save ``model`` in the SAM state-dict layout (``.safetensors`` with arch metadata, else ``.pth``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
             for k, v in model.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(tmp), metadata={"arch": model.arch, "image_size": str(model.image_size),
                                             "format": "pt"})
    else:
        torch.save(state, tmp)
    os.replace(tmp, path)
    return path
