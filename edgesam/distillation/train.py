"""The training loop shared by every phase: AdamW, warm-up + cosine, clipping, AMP, exact resume, DDP.

This module holds the settings (:class:`TrainConfig`), the data order (:class:`StepBatchSampler`)
and :func:`train_loop`; the loop itself is :class:`edgesam.distillation.trainer.Trainer`.

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

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import Dataset, Sampler

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
    override: bool = False  # resume a checkpoint written with other settings, continuing with these
    extra: dict = field(default_factory=dict)  # recorded in checkpoints and compared on resume (phase, arch, ...)


@dataclass
class TrainResult:
    """What a finished run produced."""

    steps: int
    final_loss: float
    seconds: float
    checkpoint: Path
    skipped_images: int  # draws of unreadable items
    skipped_annotations: int  # undecodable annotations, counted once per image drawn
    skipped_by_path: dict[str, int] = field(default_factory=dict)


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


def train_loop(objective: nn.Module, dataset: Dataset, config: TrainConfig, *, trained: nn.Module,
               on_step: Callable[[int], None] | None = None) -> TrainResult:
    """Optimise ``objective`` (a module whose ``forward(batch, generator)`` returns named losses).

    Args:
        objective: e.g. :class:`~edgesam.distillation.objectives.PromptInTheLoop`.
        dataset: yields samples as in :mod:`edgesam.distillation.datasets`.
        config: settings; ``out_dir/checkpoints/last.pt`` is written every ``checkpoint_every`` steps.
        trained: the module whose ``state_dict`` is checkpointed (the student ``Sam``).
        on_step: called with the step number after every step.

    Returns:
        :class:`TrainResult` (losses averaged over DDP ranks); the trained weights stay in ``trained``.

    Raises:
        TrainingInterrupted: on SIGINT/SIGTERM, after the current step was finished and saved.
        ConfigMismatchError: resuming a checkpoint written with other settings (see ``override``).
    """
    from .trainer import Trainer

    return Trainer(objective, dataset, config, trained=trained, on_step=on_step).run()
