"""Registry of image encoders. Every builder takes ``img_size`` and returns a module mapping
``[B, 3, S, S]`` to ``[B, 256, S/16, S/16]``."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any, Callable

from torch import nn


@dataclass(frozen=True)
class EncoderSpec:
    """An image encoder family: its name, the builder's import path and a one-line summary."""

    name: str
    builder: str  # "module:function", imported on first use
    summary: str

    def build(self, *, img_size: int = 1024, **kwargs: Any) -> nn.Module:
        module_name, func_name = self.builder.split(":")
        func: Callable[..., nn.Module] = getattr(import_module(module_name, __name__), func_name)
        return func(img_size=img_size, **kwargs)


ENCODERS: dict[str, EncoderSpec] = {
    spec.name: spec
    for spec in (
        EncoderSpec("vit_b", ".sam_vit:build_vit_b", "SAM ViT-B (91M), teacher"),
        EncoderSpec("vit_l", ".sam_vit:build_vit_l", "SAM ViT-L (308M), teacher"),
        EncoderSpec("vit_h", ".sam_vit:build_vit_h", "SAM ViT-H (632M), teacher"),
        EncoderSpec("sam_vit", ".sam_vit:ImageEncoderViT", "SAM ViT with custom dimensions"),
        EncoderSpec("vit_t", ".tiny_vit:build_tiny_vit_5m", "TinyViT-5M (MobileSAM)"),
        EncoderSpec("tiny_vit", ".tiny_vit:TinyViT", "TinyViT with custom dimensions"),
        EncoderSpec("edge_sam", ".rep_vit:build_rep_vit_m1", "RepViT-M1 with FPN fusion (EdgeSAM)"),
    )
}


def build_encoder(name: str, *, img_size: int = 1024, **kwargs: Any) -> nn.Module:
    """Build the encoder registered as ``name``."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; known: {sorted(ENCODERS)}")
    return ENCODERS[name].build(img_size=img_size, **kwargs)
