"""The training loop shared by every phase: AdamW, warm-up + cosine, clipping, AMP, exact resume, DDP.

Exact resume: the data order is a pure function of ``(seed, step)`` (:class:`StepBatchSampler`),
the prompt sampling generator is re-seeded from ``(seed, rank, step)`` at every step, and a
checkpoint holds the model, optimiser, scheduler, grad scaler, global RNG states and the step.
A run stopped after a checkpoint and started again with ``resume=True`` ends with the same
parameters as one that was never stopped.

DDP: launched by ``torchrun`` (``WORLD_SIZE`` > 1 in the environment), the objective is wrapped
in ``DistributedDataParallel`` (NCCL on CUDA, Gloo on CPU); every rank reads its own slice of
each global batch.
"""

from __future__ import annotations

import csv
import math
import os
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from .datasets import collate

__all__ = ["TrainConfig", "TrainResult", "StepBatchSampler", "warmup_cosine", "train_loop", "dist_info"]


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping settings of one run."""

    out_dir: str
    steps: int = 1000
    batch_size: int = 8  # global batch (split over DDP ranks)
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_steps: int = 50
    warmup_start_factor: float = 0.01
    weight_decay: float = 0.01
    clip_grad: float = 1.0
    seed: int = 0
    num_workers: int = 0
    checkpoint_every: int = 200
    log_every: int = 10
    amp: bool = True  # used only on CUDA
    resume: bool = True
    device: str = "auto"
    progress: bool = True
    find_unused_parameters: bool = True  # DDP: prompt-dependent paths (box vs point, mask input) vary per step
    stop_after: int | None = None  # end this invocation after so many steps (checkpointed), as if interrupted
    extra: dict = field(default_factory=dict)  # recorded in checkpoints (phase name, arch, ...)


@dataclass
class TrainResult:
    """What a finished run produced."""

    steps: int
    final_loss: float
    seconds: float
    checkpoint: Path
    skipped_images: int
    skipped_annotations: int


def dist_info() -> tuple[int, int, int]:
    """``(rank, local_rank, world_size)`` from the torchrun environment (0, 0, 1 when absent)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def warmup_cosine(step: int, *, total: int, warmup: int, start_factor: float, min_factor: float) -> float:
    """LR multiplier: linear from ``start_factor`` to 1 over ``warmup`` steps, then cosine to ``min_factor``."""
    if step < warmup:
        return start_factor + (1.0 - start_factor) * step / max(warmup, 1)
    progress = min(1.0, (step - warmup) / max(total - warmup, 1))
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


class StepBatchSampler(Sampler[list[int]]):
    """Batches for steps ``start_step .. total_steps - 1``; each epoch is a seeded permutation.

    The global batch of step ``t`` depends only on ``(seed, t)``; rank ``r`` of ``world`` gets
    the slice ``r::world`` of it.
    """

    def __init__(self, num_items: int, *, batch_size: int, total_steps: int, seed: int,
                 start_step: int = 0, rank: int = 0, world_size: int = 1):
        if num_items < batch_size:
            raise ValueError(f"dataset has {num_items} items, fewer than one batch of {batch_size}")
        self.n, self.bs, self.total, self.seed = num_items, batch_size, total_steps, seed
        self.start, self.rank, self.world = start_step, rank, world_size
        self.per_epoch = num_items // batch_size

    def __len__(self) -> int:
        return max(0, self.total - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        perm, perm_epoch = None, -1
        for step in range(self.start, self.total):
            epoch, pos = divmod(step, self.per_epoch)
            if epoch != perm_epoch:
                perm = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed * 100003 + epoch))
                perm_epoch = epoch
            batch = perm[pos * self.bs : (pos + 1) * self.bs].tolist()
            yield batch[self.rank :: self.world]


def _to_device(batch: dict, device: torch.device) -> dict:
    out = {}
    for k, v in batch.items():
        if isinstance(v, torch.Tensor):
            out[k] = v.to(device, non_blocking=True)
        elif isinstance(v, list) and v and isinstance(v[0], torch.Tensor):
            out[k] = [t.to(device, non_blocking=True) for t in v]
        else:
            out[k] = v
    return out


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _atomic_save(obj: object, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _log_row(path: Path, row: dict) -> None:
    new = not path.is_file()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def train_loop(objective: nn.Module, dataset: Dataset, config: TrainConfig, *, trained: nn.Module) -> TrainResult:
    """Optimise ``objective`` (a module whose ``forward(batch, generator)`` returns named losses).

    Args:
        objective: e.g. :class:`~edgesam.distillation.objectives.PromptInTheLoop`.
        dataset: yields samples as in :mod:`edgesam.distillation.datasets`.
        config: settings; ``out_dir/checkpoints/last.pt`` is written every ``checkpoint_every`` steps.
        trained: the module whose ``state_dict`` is checkpointed (the student ``Sam``).

    Returns:
        :class:`TrainResult`; the trained weights stay in ``trained``.
    """
    rank, local_rank, world = dist_info()
    if config.device == "auto":
        device = torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(config.device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    np.random.seed(config.seed)
    objective.to(device)
    trained.train()

    params = [p for p in objective.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
    )
    min_factor = config.min_lr / config.lr
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: warmup_cosine(s, total=config.steps, warmup=config.warmup_steps,
                                start_factor=config.warmup_start_factor, min_factor=min_factor),
    )
    use_amp = config.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    out = Path(config.out_dir)
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.pt"
    start_step, skipped_img, skipped_ann = 0, 0, 0
    if config.resume and last.is_file():
        state = torch.load(last, map_location="cpu", weights_only=False)
        trained.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        start_step = int(state["step"])
        skipped_img, skipped_ann = state.get("skipped_images", 0), state.get("skipped_annotations", 0)

    model: nn.Module = objective
    if world > 1:
        model = nn.parallel.DistributedDataParallel(
            objective,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=config.find_unused_parameters,
        )
    sampler = StepBatchSampler(len(dataset), batch_size=config.batch_size, total_steps=config.steps,
                               seed=config.seed, start_step=start_step, rank=rank, world_size=world)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=config.num_workers,
                        pin_memory=device.type == "cuda", persistent_workers=False)

    is_main = rank == 0
    writer = None
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(out / "tensorboard"))
        except Exception:  # tensorboard is optional
            writer = None
    bar = None
    if is_main and config.progress:
        from tqdm import tqdm

        phase = str(config.extra.get("phase", "train"))
        bar = tqdm(total=config.steps, initial=start_step, desc=phase, dynamic_ncols=True)

    def save(step: int) -> None:
        if is_main:
            _atomic_save({
                "model": trained.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "rng": _rng_state(),
                "step": step, "config": asdict(config),
                "skipped_images": skipped_img, "skipped_annotations": skipped_ann,
            }, last)

    t0 = time.time()
    step = start_step
    loss_value = float("nan")
    for batch in loader:
        skipped_img += batch["skipped_images"]
        skipped_ann += batch["skipped_annotations"]
        if "image" not in batch:  # every image of this batch was unreadable
            step += 1
            scheduler.step()
            continue
        batch = _to_device(batch, device)
        gen = torch.Generator().manual_seed(config.seed * 1_000_003 + rank * 7919 + step)
        with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_amp):
            losses = model(batch, gen)
        total = sum(losses.values())
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.unscale_(optimizer)
        if config.clip_grad > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, config.clip_grad)
        else:
            grad_norm = torch.tensor(0.0)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        step += 1
        loss_value = float(total.detach())
        if is_main and (step % config.log_every == 0 or step == config.steps):
            row = {"step": step, "lr": optimizer.param_groups[0]["lr"], "loss": loss_value,
                   **{k: float(v.detach()) for k, v in losses.items()}, "grad_norm": float(grad_norm),
                   "seconds": round(time.time() - t0, 2), "skipped_images": skipped_img,
                   "skipped_annotations": skipped_ann}
            _log_row(out / "log.csv", row)
            if writer is not None:
                for k, v in row.items():
                    if k != "step":
                        writer.add_scalar(k, v, step)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}")
        if step % config.checkpoint_every == 0 or step == config.steps:
            save(step)
        if config.stop_after is not None and step - start_step >= config.stop_after:
            save(step)
            break
    if bar is not None:
        bar.close()
    if writer is not None:
        writer.close()
    if world > 1:
        dist.barrier()
    return TrainResult(steps=step, final_loss=loss_value, seconds=time.time() - t0, checkpoint=last,
                       skipped_images=skipped_img, skipped_annotations=skipped_ann)
