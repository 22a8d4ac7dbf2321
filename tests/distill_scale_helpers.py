"""Tiny teacher/student archs for the distillation-at-scale tests, and the torchrun cache worker.

Run as a script under ``torchrun --nproc-per-node 2`` it builds the cache of ``--synthetic N``
scenes with the seeded tiny teacher into ``--root`` (each rank its slice) and writes the merged
key list to ``--keys-out`` (rank 0).
"""

from __future__ import annotations

import argparse
import json

import torch

from edgesam.scenes import SceneConfig
from edgesam.models.registry import MODELS, ModelSpec, build_sam, register_model

DECODER = dict(image_size=64, prompt_embed_dim=32, decoder_depth=1, decoder_mlp_dim=64, decoder_heads=2,
               iou_head_hidden_dim=32)
SCENES = SceneConfig(height=48, width=64, max_objects=3, min_visible_area=16)

if "scale_test_teacher" not in MODELS:
    register_model(ModelSpec("scale_test_teacher", "sam_vit", "", encoder_kwargs=dict(
        embed_dim=32, depth=1, num_heads=2, window_size=4, out_chans=32), **DECODER))
    register_model(ModelSpec("scale_test_student", "tiny_vit", "", encoder_kwargs=dict(
        embed_dims=(16, 16, 32, 32), depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), window_sizes=(4, 4, 4, 4),
        out_chans=32), **DECODER))


def seeded_teacher(seed: int = 0):
    torch.manual_seed(seed)
    return build_sam("scale_test_teacher")


def train_tiny(out_dir, **kw):
    """Train the tiny teacher arch from seed 0 for 5 steps (``kw`` overrides TrainConfig fields;
    ``on_step`` is passed to the loop); returns the model."""
    from edgesam.distillation.datasets import SyntheticSceneDataset
    from edgesam.distillation.objectives import SupervisedSam
    from edgesam.distillation.train import TrainConfig, train_loop

    torch.manual_seed(0)
    model = build_sam("scale_test_teacher")
    data = SyntheticSceneDataset(8, image_size=64, config=SCENES)
    cfg = dict(out_dir=str(out_dir), steps=5, batch_size=4, lr=3e-3, warmup_steps=1, checkpoint_every=100,
               progress=False)
    on_step = kw.pop("on_step", None)
    cfg.update(kw)
    train_loop(SupervisedSam(model, max_prompts=2), data, TrainConfig(**cfg), trained=model, on_step=on_step)
    return model


def sigterm_at_step_2(out_dir: str) -> None:
    """Child process: train to step 2, SIGTERM itself, print the interruption as JSON."""
    import os
    import signal

    from edgesam.distillation.trainer import TrainingInterrupted

    torch.set_num_threads(1)
    try:
        train_tiny(out_dir, on_step=lambda s: s == 2 and os.kill(os.getpid(), signal.SIGTERM))
    except TrainingInterrupted as exc:
        print(json.dumps({"step": exc.step, "checkpoint": str(exc.checkpoint)}))


def main() -> None:
    from edgesam.distillation.datasets import SyntheticSceneDataset
    from edgesam.distillation.pipeline import cache_embeddings

    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--synthetic", type=int, required=True)
    p.add_argument("--keys-out", required=True)
    args = p.parse_args()
    torch.set_num_threads(1)
    data = SyntheticSceneDataset(args.synthetic, image_size=64, config=SCENES)
    cache, stats = cache_embeddings(seeded_teacher(), data, args.root, shard_size=2, batch_size=2, device="cpu")
    import torch.distributed as dist

    if dist.get_rank() == 0:
        with open(args.keys_out, "w") as f:
            json.dump({"keys": cache.keys_of(data), "computed": stats.computed, "entries": len(cache)}, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    import sys

    if len(sys.argv) == 3 and sys.argv[1] == "--sigterm-at-step-2":
        sigterm_at_step_2(sys.argv[2])
    else:
        main()
