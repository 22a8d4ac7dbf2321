"""Training checkpoints: atomic writes, RNG state, and the configuration check on resume.

A checkpoint (``out_dir/checkpoints/last.pt``) holds the trained module's state dict, the
optimiser, scheduler and grad-scaler states, every global RNG state, the step and the
configuration it was written with. Resuming compares that configuration with the current one
(:func:`config_differences`): a run never silently continues with other settings.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["ConfigMismatchError", "BOOKKEEPING_FIELDS", "config_differences", "rng_state", "set_rng_state",
           "atomic_save"]

#: TrainConfig fields that may change between invocations of one run without changing its result.
BOOKKEEPING_FIELDS = frozenset({"out_dir", "resume", "progress", "stop_after", "log_every", "checkpoint_every",
                                "num_workers", "device", "override"})


class ConfigMismatchError(ValueError):
    """A checkpoint was written with another configuration than the one asked for now."""


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return out


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any],
                       *, ignore: Iterable[str] = BOOKKEEPING_FIELDS) -> list[str]:
    """Human-readable ``"name: saved -> current"`` lines for every setting that differs.

    Nested dicts (``extra``) are compared key by key (``extra.student_arch``); fields in
    ``ignore`` (bookkeeping such as ``out_dir`` or ``log_every``) are not compared.
    """
    skip = set(ignore)
    a, b = _flatten(saved), _flatten(current)
    lines = []
    for key in sorted(set(a) | set(b)):
        if key.split(".", 1)[0] in skip:
            continue
        va, vb = a.get(key, "<unset>"), b.get(key, "<unset>")
        if va != vb:
            lines.append(f"{key}: {va!r} (checkpoint) -> {vb!r} (now)")
    return lines


def rng_state() -> dict:
    """The Python, NumPy, torch (and CUDA) global RNG states."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` returned."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def atomic_save(obj: object, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` to a temporary name next to ``path``, then rename (never a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path
