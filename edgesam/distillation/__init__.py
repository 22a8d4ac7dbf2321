"""Distillation of lightweight SAM students from a SAM teacher (MobileSAM / EdgeSAM recipes).

Phase 1 regresses the teacher's image embeddings (cached once on disk); phase 2 runs the
teacher's frozen decoder on both embeddings with box / point prompts and refinement points
sampled where student and teacher disagree. See :mod:`edgesam.distillation.pipeline` for a
walk-through and :mod:`edgesam.distillation.demo` for the synthetic end-to-end proof.

Submodules import torch (except ``cli``'s argument parsers); this package's ``__init__`` does
not. The synthetic scene generator lives in :mod:`edgesam.scenes` (numpy + OpenCV, usable in
runtime-only installs); ``Scene``, ``SceneConfig`` and ``generate_scene`` are re-exported here.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS: dict[str, str] = {
    "CacheItem": "teacher_cache",
    "CocoDataset": "datasets",
    "ConfigMismatchError": "checkpoint",
    "EncoderDistillation": "objectives",
    "ImageFolderDataset": "datasets",
    "PromptInTheLoop": "objectives",
    "SA1BDataset": "datasets",
    "Scene": "synthetic",  # edgesam.scenes, through the old module name
    "SceneConfig": "synthetic",
    "SupervisedSam": "objectives",
    "SyntheticSceneDataset": "datasets",
    "TeacherCache": "teacher_cache",
    "TeacherEncoder": "teacher_encode",
    "TrainConfig": "train",
    "TrainResult": "train",
    "Trainer": "trainer",
    "TrainingInterrupted": "trainer",
    "cache_embeddings": "pipeline",
    "collate": "datasets",
    "dataset_keys": "datasets",
    "decoder_loss": "losses",
    "distill_encoder": "pipeline",
    "distill_prompt_in_the_loop": "pipeline",
    "embedding_mse": "losses",
    "evaluate": "evaluate",
    "generate_scene": "synthetic",
    "load_teacher": "pipeline",
    "mask_bce": "losses",
    "mask_dice": "losses",
    "refinement_points": "prompts",
    "save_sam": "pipeline",
    "state_dict_hash": "teacher_cache",
    "train_loop": "train",
    "train_supervised": "pipeline",
    "write_coco_scenes": "scene_writer",
    "write_sa1b_scenes": "scene_writer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the public names on first use (see the module docstring)."""
    if name in _EXPORTS:
        value = getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
