"""RepViT image encoder (the M1 variant is EdgeSAM's encoder, arch ``edge_sam``).

A pure-convolution mobile network: a stride-4 stem and four stages of RepViT blocks (a
re-parameterisable depthwise token mixer, optional squeeze-excite, and a residual 1x1 MLP as
channel mixer). As in EdgeSAM, the stride-16 output of stage 2 and the bicubically upsampled
stride-32 output of stage 3 are projected to 256 channels and summed, then a SAM-style neck
follows: ``[B,3,S,S] -> [B,256,S/16,S/16]``.

Submodule names follow the published EdgeSAM checkpoint (``features.{i}``, ``fuse_stage2``,
``fuse_stage3.op_list.0``, ``neck``). :func:`fuse_rep_vit` returns a deployment copy in which
every convolution+BatchNorm pair and every multi-branch depthwise mixer is folded into one
convolution.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from edgesam.models.layers import Conv2dBN, LayerNorm2d

__all__ = ["RepViT", "build_rep_vit_m1", "fuse_rep_vit"]


class BlockCfg(NamedTuple):
    """One RepViT block: output channels, squeeze-excite on/off, depthwise stride."""

    channels: int
    use_se: bool
    stride: int


def _m1_blocks() -> tuple[BlockCfg, ...]:
    """Block list of RepViT-M1: 3x48, 4x96, 16x192, 3x384 channels; SE on every other block."""
    se_192 = [i % 2 == 0 for i in range(14)] + [False]
    return (
        *(BlockCfg(48, se, 1) for se in (True, False, False)),
        BlockCfg(96, False, 2),
        *(BlockCfg(96, se, 1) for se in (True, False, False)),
        BlockCfg(192, False, 2),
        *(BlockCfg(192, se, 1) for se in se_192),
        BlockCfg(384, False, 2),
        *(BlockCfg(384, se, 1) for se in (True, False)),
    )


def _round_channels(value: float, divisor: int = 8) -> int:
    """Nearest multiple of ``divisor`` (at least ``divisor``), never below the value by more than 10%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class SqueezeExcite(nn.Module):
    """Channel gating ``x * sigmoid(fc2(relu(fc1(mean_hw(x)))))``: ``[B,C,H,W]`` in and out."""

    def __init__(self, channels: int, *, rd_ratio: float = 0.25) -> None:
        super().__init__()
        # Reduced width: rounded to a multiple of 8 with no 10% floor.
        reduced = max(8, int(channels * rd_ratio + 4) // 8 * 8)
        self.fc1 = nn.Conv2d(channels, reduced, kernel_size=1)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(reduced, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(s)


class RepVGGDW(nn.Module):
    """Depthwise ``3x3 conv+BN + 1x1 conv+BN + identity``; :meth:`fuse` folds it into one conv."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = Conv2dBN(dim, dim, 3, 1, 1, groups=dim)
        self.conv1 = Conv2dBN(dim, dim, 1, 1, 0, groups=dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.conv1(x) + x

    @torch.no_grad()
    def fuse(self) -> nn.Conv2d:
        """Return one depthwise 3x3 ``nn.Conv2d`` (with bias) equal to this module in eval mode."""
        fused = self.conv.fuse()
        one = self.conv1.fuse()
        weight = fused.weight + F.pad(one.weight, [1, 1, 1, 1])
        weight[:, :, 1, 1] += 1.0
        fused.weight.copy_(weight)
        fused.bias.copy_(fused.bias + one.bias)
        return fused


class Residual(nn.Module):
    """``x + m(x)``."""

    def __init__(self, m: nn.Module) -> None:
        super().__init__()
        self.m = m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.m(x)


class RepViTBlock(nn.Module):
    """Token mixer then residual channel mixer: ``[B,C_in,H,W] -> [B,C_out,H/s,W/s]``.

    The channel mixer is ``x + pw2(GELU(pw1(x)))`` with 1x1 Conv2dBN ``pw1: C_out -> hidden_ch``
    and ``pw2: hidden_ch -> C_out``.

    With ``stride == 1`` (requires ``in_ch == out_ch``) the token mixer is ``[RepVGGDW, SE?]``;
    with ``stride == 2`` it is ``[depthwise 3x3 stride-2 Conv2dBN, SE?, 1x1 Conv2dBN]``.
    """

    def __init__(self, *, in_ch: int, hidden_ch: int, out_ch: int, stride: int, use_se: bool) -> None:
        super().__init__()
        se: nn.Module = SqueezeExcite(in_ch) if use_se else nn.Identity()
        if stride == 2:
            self.token_mixer = nn.Sequential(
                Conv2dBN(in_ch, in_ch, 3, 2, 1, groups=in_ch), se, Conv2dBN(in_ch, out_ch, 1, 1, 0)
            )
        elif stride == 1:
            if in_ch != out_ch:
                raise ValueError(f"a stride-1 block keeps the width, got {in_ch} -> {out_ch}")
            self.token_mixer = nn.Sequential(RepVGGDW(in_ch), se)
        else:
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        self.channel_mixer = Residual(
            nn.Sequential(
                Conv2dBN(out_ch, hidden_ch, 1, 1, 0),
                nn.GELU(),
                Conv2dBN(hidden_ch, out_ch, 1, 1, 0, bn_weight_init=0.0),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.channel_mixer(self.token_mixer(x))


class Upsample(nn.Module):
    """Resize by ``scale_factor`` with ``F.interpolate`` (``align_corners=False``)."""

    def __init__(self, *, scale_factor: float = 2.0, mode: str = "bicubic") -> None:
        super().__init__()
        self.scale_factor = scale_factor
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.scale_factor, mode=self.mode, align_corners=False)


class ProjectUpsample(nn.Module):
    """1x1 projection then 2x upsampling, held in ``op_list`` (checkpoint layout)."""

    def __init__(self, in_ch: int, out_ch: int, *, mode: str) -> None:
        super().__init__()
        self.op_list = nn.ModuleList([nn.Conv2d(in_ch, out_ch, kernel_size=1, bias=False), Upsample(mode=mode)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.op_list:
            x = op(x)
        return x


class RepViT(nn.Module):
    """RepViT backbone with EdgeSAM's two-scale fusion and SAM neck.

    ``[B,3,S,S] -> [B,out_chans,S/16,S/16]``; ``img_size`` must be a multiple of 32 (the
    stride-32 stage is upsampled 2x onto the stride-16 grid).
    """

    def __init__(
        self,
        *,
        blocks: Sequence[BlockCfg],
        img_size: int = 1024,
        in_chans: int = 3,
        expand_ratio: float = 2.0,
        out_chans: int = 256,
        upsample_mode: str = "bicubic",
    ) -> None:
        super().__init__()
        if img_size <= 0 or img_size % 32:
            raise ValueError(f"img_size must be a positive multiple of 32, got {img_size}")
        self.img_size = img_size
        width = _round_channels(blocks[0].channels)
        stem = nn.Sequential(Conv2dBN(in_chans, width // 2, 3, 2, 1), nn.GELU(), Conv2dBN(width // 2, width, 3, 2, 1))
        layers: list[nn.Module] = [stem]
        stage_ends: list[int] = []  # index into ``features`` of each stage's last block
        for i, cfg in enumerate(blocks):
            out_ch = _round_channels(cfg.channels)
            if i > 0 and cfg.channels != blocks[i - 1].channels:
                stage_ends.append(i)  # features[i] is block i-1
            hidden = _round_channels(out_ch * expand_ratio)  # channel-mixer width
            layers.append(
                RepViTBlock(in_ch=width, hidden_ch=hidden, out_ch=out_ch, stride=cfg.stride, use_se=cfg.use_se)
            )
            width = out_ch
        stage_ends.append(len(blocks))
        if len(stage_ends) != 4:
            raise ValueError(f"expected 4 stages of blocks, got {len(stage_ends)}")
        self.features = nn.ModuleList(layers)
        self.stage2_index, self.stage3_index = stage_ends[2], stage_ends[3]
        stage2_ch = _round_channels(blocks[self.stage2_index - 1].channels)
        stage3_ch = _round_channels(blocks[self.stage3_index - 1].channels)

        self.fuse_stage2 = nn.Conv2d(stage2_ch, out_chans, kernel_size=1, bias=False)
        self.fuse_stage3 = ProjectUpsample(stage3_ch, out_chans, mode=upsample_mode)
        self.neck = nn.Sequential(
            nn.Conv2d(out_chans, out_chans, kernel_size=1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: normalised image ``[B,3,S,S]``; returns embeddings ``[B,out_chans,S/16,S/16]``."""
        stage2 = x
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i == self.stage2_index:
                stage2 = x
        x = self.fuse_stage2(stage2) + self.fuse_stage3(x)
        return self.neck(x)

    def fuse_for_deployment(self) -> RepViT:
        """Return a fused copy (see :func:`fuse_rep_vit`)."""
        return fuse_rep_vit(self)


def _fold_in_place(module: nn.Module) -> None:
    """Replace every RepVGGDW / Conv2dBN child (recursively) by its single fused convolution."""
    for name, child in module.named_children():
        if isinstance(child, (RepVGGDW, Conv2dBN)):
            setattr(module, name, child.fuse())
        else:
            _fold_in_place(child)


def fuse_rep_vit(model: RepViT) -> RepViT:
    """Deployment copy of ``model`` (left untouched), in eval mode.

    Each ``Conv2dBN`` becomes one biased ``nn.Conv2d`` and each :class:`RepVGGDW` becomes
    one depthwise 3x3 convolution (its identity branch folded into the kernel centre);
    residual connections, squeeze-excite and the neck are kept. Computes the same function
    as ``model.eval()`` up to float rounding; its state-dict keys differ from the checkpoint's.
    """
    fused = copy.deepcopy(model).eval()
    _fold_in_place(fused)
    return fused


def build_rep_vit_m1(*, img_size: int = 1024) -> RepViT:
    """RepViT-M1 as used by EdgeSAM (``edge_sam``), output ``[B,256,img_size/16,img_size/16]``."""
    return RepViT(blocks=_m1_blocks(), img_size=img_size, upsample_mode="bicubic")
