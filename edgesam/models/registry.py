"""Model specifications: one frozen spec per architecture, and ``build_sam`` to build one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from .encoders import build_encoder
from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder
from .sam import Sam
from .transformer import TwoWayTransformer


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build one SAM-family architecture.

    ``encoder`` names an entry of :data:`edgesam.models.encoders.ENCODERS`;
    ``encoder_kwargs`` are passed to its builder beside ``img_size``.
    """

    arch: str
    encoder: str
    summary: str
    image_size: int = 1024
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    prompt_embed_dim: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_heads: int = 8
    iou_head_hidden_dim: int = 256
    num_multimask_outputs: int = 3


MODELS: dict[str, ModelSpec] = {
    spec.arch: spec
    for spec in (
        ModelSpec("vit_h", "vit_h", "SAM ViT-H (official teacher)"),
        ModelSpec("vit_l", "vit_l", "SAM ViT-L (official teacher)"),
        ModelSpec("vit_b", "vit_b", "SAM ViT-B (official teacher)"),
        ModelSpec("vit_t", "vit_t", "MobileSAM: TinyViT-5M encoder"),
        ModelSpec("edge_sam", "edge_sam", "EdgeSAM: RepViT-M1 encoder"),
    )
}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to :data:`MODELS` (an existing arch name is an error)."""
    if spec.arch in MODELS:
        raise ValueError(f"architecture {spec.arch!r} is already registered")
    MODELS[spec.arch] = spec
    return spec


def get_spec(arch: str) -> ModelSpec:
    """The registered spec for ``arch``; unknown names raise ``ValueError`` listing the known ones."""
    if arch not in MODELS:
        raise ValueError(f"unknown architecture {arch!r}; known: {sorted(MODELS)}")
    return MODELS[arch]


def build_sam(arch: str | ModelSpec, *, image_size: int | None = None) -> Sam:
    """Build an untrained SAM model of ``arch`` (eval mode) for ``image_size`` inputs.

    ``image_size`` defaults to the spec's (1024 for the official models) and must be a multiple
    of 64 (the encoders downsample by up to 32 and the embedding grid is ``S / 16``).
    """
    spec = arch if isinstance(arch, ModelSpec) else get_spec(arch)
    size = spec.image_size if image_size is None else int(image_size)
    if size <= 0 or size % 64:
        raise ValueError(f"image_size must be a positive multiple of 64, got {image_size}")
    grid = size // 16
    encoder: nn.Module = build_encoder(spec.encoder, img_size=size, **spec.encoder_kwargs)
    prompt_encoder = PromptEncoder(
        embed_dim=spec.prompt_embed_dim,
        image_embedding_size=(grid, grid),
        input_image_size=(size, size),
        mask_in_chans=spec.mask_in_chans,
    )
    decoder = MaskDecoder(
        transformer_dim=spec.prompt_embed_dim,
        transformer=TwoWayTransformer(
            depth=spec.decoder_depth,
            embedding_dim=spec.prompt_embed_dim,
            mlp_dim=spec.decoder_mlp_dim,
            num_heads=spec.decoder_heads,
        ),
        num_multimask_outputs=spec.num_multimask_outputs,
        iou_head_hidden_dim=spec.iou_head_hidden_dim,
    )
    model = Sam(
        image_encoder=encoder, prompt_encoder=prompt_encoder, mask_decoder=decoder, image_size=size, arch=spec.arch
    )
    return model.eval()


# edgesam's own distilled models (edgesam.distillation): the small synthetic-scene teacher and
# the embedded `edgesam-demo` student (edgesam/distillation/demo.py). Both use a 64-wide decoder
# so that the demo weights stay a few MB; the student's decoder is the teacher's, frozen.
_DEMO_DECODER: dict[str, Any] = dict(
    image_size=128, prompt_embed_dim=64, decoder_depth=2, decoder_mlp_dim=256, decoder_heads=4,
    iou_head_hidden_dim=64,
)
for _spec in (
    ModelSpec(
        "synthetic_teacher",
        "sam_vit",
        "Small SAM ViT teacher trained on synthetic scenes (distillation demo)",
        encoder_kwargs=dict(
            embed_dim=128, depth=4, num_heads=4, window_size=8, global_attn_indexes=(3,), out_chans=64
        ),
        **_DEMO_DECODER,
    ),
    ModelSpec(
        "edgesam_demo",
        "tiny_vit",
        "Small TinyViT student distilled from synthetic_teacher (embedded `edgesam-demo`)",
        encoder_kwargs=dict(
            embed_dims=(32, 64, 96, 128),
            depths=(1, 1, 2, 1),
            num_heads=(1, 2, 3, 4),
            window_sizes=(7, 7, 8, 8),
            out_chans=64,
        ),
        **_DEMO_DECODER,
    ),
):
    register_model(_spec)
