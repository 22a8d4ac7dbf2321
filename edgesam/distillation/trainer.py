"""The trainer behind :func:`~edgesam.distillation.train.train_loop`: setup, step, resume/save, logging.

* :meth:`Trainer.setup` picks the device, joins the process group under ``torchrun``, seeds
  every RNG and builds AdamW, the warm-up + cosine schedule and the grad scaler.
* :meth:`Trainer.resume` loads ``checkpoints/last.pt`` and refuses one written with another
  configuration (naming the differences) unless ``config.override`` is set.
* :meth:`Trainer.step` runs one optimisation step and returns its losses (averaged over ranks).
* :meth:`Trainer.run` loops over the steps; SIGINT (Ctrl-C) or SIGTERM finish the current step,
  save a checkpoint and raise :class:`TrainingInterrupted`.
* :class:`TrainLogger` writes ``log.csv``, TensorBoard scalars and a progress bar (rank 0 only).
"""

from __future__ import annotations

import csv
import math
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .checkpoint import ConfigMismatchError, atomic_save, config_differences, rng_state, set_rng_state
from .datasets import collate

if TYPE_CHECKING:
    from .train import TrainConfig, TrainResult

__all__ = ["Trainer", "TrainLogger", "TrainingInterrupted", "resolve_device"]


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on SIGINT/SIGTERM after saving a checkpoint (``.step``, ``.checkpoint``)."""

    def __init__(self, step: int, checkpoint: Path):
        super().__init__(f"interrupted after step {step}; checkpoint saved to {checkpoint}")
        self.step, self.checkpoint = step, checkpoint


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> ``cuda:<local_rank>`` when CUDA is present, else CPU; other names as given."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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


class TrainLogger:
    """CSV rows, TensorBoard scalars (when installed) and a tqdm bar; inert on ranks other than 0."""

    def __init__(self, out: Path, *, enabled: bool, progress: bool, total: int, initial: int, desc: str):
        self.csv_path = out / "log.csv"
        self.writer: Any = None
        self.bar: Any = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(out / "tensorboard"))
        except Exception:  # tensorboard is optional
            self.writer = None
        if progress:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True)

    def row(self, row: dict) -> None:
        """Append ``row`` to ``log.csv`` (header on first write) and to TensorBoard."""
        new = not self.csv_path.is_file()
        with open(self.csv_path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
        if self.writer is not None:
            for k, v in row.items():
                if k != "step":
                    self.writer.add_scalar(k, v, row["step"])

    def tick(self, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()


class Trainer:
    """One training run of ``objective`` (``forward(batch, generator) -> {name: loss}``) on ``dataset``.

    Args:
        objective: the module optimised (wrapped in DDP under ``torchrun``).
        dataset: samples as in :mod:`edgesam.distillation.datasets`.
        config: a :class:`~edgesam.distillation.train.TrainConfig`.
        trained: the module whose ``state_dict`` is checkpointed (the student ``Sam``).
        on_step: called with the step number after every completed step (hooks, tests).
    """

    def __init__(self, objective: nn.Module, dataset: Dataset, config: TrainConfig, *, trained: nn.Module,
                 on_step: Callable[[int], None] | None = None):
        from .train import dist_info

        self.objective, self.dataset, self.config, self.trained = objective, dataset, config, trained
        self.on_step = on_step
        self.rank, self.local_rank, self.world = dist_info()
        self.is_main = self.rank == 0
        self.out = Path(config.out_dir)
        self.last = self.out / "checkpoints" / "last.pt"
        self.step_count = 0
        self.skipped_images = 0  # draws of unreadable items (summed over ranks)
        self.skipped_by_path: dict[str, int] = {}  # annotations that could not be decoded, once per image
        self._stop = False

    # -- setup -----------------------------------------------------------------------------
    def setup(self) -> None:
        """Device, process group, seeds, optimiser, schedule, grad scaler."""
        from .train import warmup_cosine

        cfg = self.config
        self.device = resolve_device(cfg.device, self.local_rank)
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        self.objective.to(self.device)
        self.trained.train()
        self.params = [p for p in self.objective.parameters() if p.requires_grad]
        decay = [p for p in self.params if p.ndim > 1]
        no_decay = [p for p in self.params if p.ndim <= 1]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: warmup_cosine(s, total=self.config.steps, warmup=self.config.warmup_steps,
                                    start_factor=self.config.warmup_start_factor,
                                    min_factor=self.config.min_lr / self.config.lr))
        self.use_amp = cfg.amp and self.device.type == "cuda"
        bf16 = self.use_amp and torch.cuda.is_bf16_supported()
        self.amp_dtype = torch.bfloat16 if bf16 else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp and not bf16)
        self.model: nn.Module = self.objective
        if self.world > 1:
            self.model = nn.parallel.DistributedDataParallel(
                self.objective, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=cfg.find_unused_parameters)

    # -- checkpoints -----------------------------------------------------------------------
    def resume(self) -> int:
        """Load ``last.pt`` when resuming; returns the step to continue from (0 for a fresh run).

        Raises:
            ConfigMismatchError: the checkpoint's configuration differs (unless ``config.override``).
            ValueError: the checkpoint does not fit the model (another architecture).
        """
        if not (self.config.resume and self.last.is_file()):
            return 0
        state = torch.load(self.last, map_location="cpu", weights_only=False)
        diffs = config_differences(state.get("config", {}), asdict(self.config))
        if diffs and not self.config.override:
            raise ConfigMismatchError(
                f"{self.last} was written with another configuration: {'; '.join(diffs)}. "
                "Use the original settings, --override to continue with the new ones, or --no-resume")
        try:
            self.trained.load_state_dict(state["model"])
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise ValueError(f"{self.last} does not fit this model ({first}); use another --out or --no-resume") \
                from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if diffs:  # --override: the schedule follows the new settings from here on
            self.scheduler.base_lrs = [self.config.lr for _ in self.optimizer.param_groups]
            factor = self.scheduler.lr_lambdas[0](self.scheduler.last_epoch)
            for group in self.optimizer.param_groups:
                group["lr"] = factor * self.config.lr
        self.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.skipped_images = int(state.get("skipped_images", 0))
        self.skipped_by_path = dict(state.get("skipped_by_path", {}))
        return int(state["step"])

    def save(self, step: int) -> None:
        """Write ``last.pt`` atomically (rank 0 writes; every rank must call it)."""
        skipped = self._all_skipped()
        if self.is_main:
            atomic_save({
                "model": self.trained.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(), "rng": rng_state(),
                "step": step, "config": asdict(self.config),
                "skipped_images": self.skipped_images, "skipped_by_path": skipped,
            }, self.last)

    def _all_skipped(self) -> dict[str, int]:
        """``skipped_by_path`` united over ranks (collective: every rank calls it)."""
        if self.world == 1:
            return dict(self.skipped_by_path)
        parts: list[Any] = [None] * self.world
        dist.all_gather_object(parts, self.skipped_by_path)
        return {k: v for part in parts for k, v in part.items()}

    # -- one step --------------------------------------------------------------------------
    def _reduce(self, values: list[float]) -> list[float]:
        """Sum ``values`` over ranks (identity without a process group)."""
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def step(self, batch: dict, step: int) -> dict[str, float] | None:
        """One optimisation step on ``batch``; losses averaged over ranks (None: nothing readable)."""
        self.skipped_by_path.update(batch.get("skipped_by_path", {}))
        if "image" not in batch:  # every image of this batch was unreadable
            self.scheduler.step()
            self.skipped_images += int(batch["skipped_images"])
            return None
        batch = _to_device(batch, self.device)
        gen = torch.Generator().manual_seed(self.config.seed * 1_000_003 + self.rank * 7919 + step)
        with torch.autocast(device_type=self.device.type, dtype=self.amp_dtype, enabled=self.use_amp):
            losses = self.model(batch, gen)
        total = sum(losses.values())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = (torch.nn.utils.clip_grad_norm_(self.params, self.config.clip_grad)
                     if self.config.clip_grad > 0 else torch.tensor(0.0))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        names = list(losses)
        reduced = self._reduce([float(total.detach()), *(float(losses[k].detach()) for k in names),
                                float(batch["skipped_images"]), float(self._stop)])
        world = float(self.world)
        if reduced[-1] > 0:
            self._stop = True  # a stop asked on any rank stops every rank after this step
        self.skipped_images += int(reduced[-2])
        out = {"loss": reduced[0] / world, **{k: v / world for k, v in zip(names, reduced[1:])}}
        out["grad_norm"] = float(grad_norm)
        return out

    # -- the loop --------------------------------------------------------------------------
    @contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM ask for a stop after the current step; a second SIGINT interrupts at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self._stop and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self._stop = True

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)

    def run(self) -> TrainResult:
        """Set up, resume, train to ``config.steps`` (or ``stop_after`` more); returns the result."""
        from .train import StepBatchSampler, TrainResult

        cfg = self.config
        self.setup()
        start = self.resume()
        sampler = StepBatchSampler(len(self.dataset), batch_size=cfg.batch_size, total_steps=cfg.steps,  # type: ignore[arg-type]
                                   seed=cfg.seed, start_step=start, rank=self.rank, world_size=self.world)
        loader = DataLoader(self.dataset, batch_sampler=sampler, collate_fn=collate, num_workers=cfg.num_workers,
                            pin_memory=self.device.type == "cuda", persistent_workers=False)
        if self.is_main:
            self.last.parent.mkdir(parents=True, exist_ok=True)
        log = TrainLogger(self.out, enabled=self.is_main, progress=cfg.progress, total=cfg.steps, initial=start,
                          desc=str(cfg.extra.get("phase", "train")))
        t0 = time.time()
        step, loss = start, math.nan
        try:
            with self._stop_on_signals():
                for batch in loader:
                    losses = self.step(batch, step)
                    step += 1
                    if losses is not None:
                        loss = losses["loss"]
                        if self.is_main and (step % cfg.log_every == 0 or step == cfg.steps):
                            log.row({"step": step, "lr": self.optimizer.param_groups[0]["lr"], **losses,
                                     "seconds": round(time.time() - t0, 2), "skipped_images": self.skipped_images,
                                     "skipped_annotations": sum(self.skipped_by_path.values())})
                    log.tick(loss)
                    if self.on_step is not None:
                        self.on_step(step)
                    if self._stop:
                        self.save(step)
                        raise TrainingInterrupted(step, self.last)
                    if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                        self.save(step)
                    if cfg.stop_after is not None and step - start >= cfg.stop_after:
                        self.save(step)
                        break
        finally:
            log.close()
        skipped = self._all_skipped()
        if self.world > 1:
            dist.barrier()
        return TrainResult(steps=step, final_loss=loss, seconds=time.time() - t0, checkpoint=self.last,
                           skipped_images=self.skipped_images, skipped_annotations=sum(skipped.values()),
                           skipped_by_path=skipped)
