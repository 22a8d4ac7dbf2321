"""TinyViT image encoder (the 5M variant is MobileSAM's encoder, arch ``vit_t``).

A hierarchical encoder: a convolutional stem and MBConv stage at stride 4, then three stages
of windowed self-attention blocks (each followed by a depthwise "local" convolution and an
MLP), joined by patch-merging convolutions. The merge into the last stage keeps the
resolution, so the token grid ends at stride 16. A SAM-style neck projects to 256 channels.

Every resolution (token grids, window padding) is derived from ``img_size``; nothing assumes
a 1024-pixel input. Submodule names follow the published MobileSAM checkpoint
(``patch_embed.seq``, ``layers.{i}.blocks.{j}``, ``layers.{i}.downsample``, ``neck``); the
classifier ``norm_head``/``head`` entries of that checkpoint are not part of this module.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from edgesam.models.layers import Conv2dBN, LayerNorm2d

__all__ = ["TinyViT", "build_tiny_vit_5m"]


class PatchEmbed(nn.Module):
    """Two stride-2 3x3 Conv2dBN with a GELU between: ``[B,3,S,S] -> [B,C,S/4,S/4]``."""

    def __init__(self, *, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.seq = nn.Sequential(
            Conv2dBN(in_chans, embed_dim // 2, 3, 2, 1),
            nn.GELU(),
            Conv2dBN(embed_dim // 2, embed_dim, 3, 2, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


class MBConv(nn.Module):
    """Inverted residual block (1x1 expand, 3x3 depthwise, 1x1 project): ``[B,C,H,W]`` in and out."""

    def __init__(self, *, dim: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * expand_ratio)
        self.conv1 = Conv2dBN(dim, hidden, ks=1)
        self.act1 = nn.GELU()
        self.conv2 = Conv2dBN(hidden, hidden, ks=3, stride=1, pad=1, groups=hidden)
        self.act2 = nn.GELU()
        self.conv3 = Conv2dBN(hidden, dim, ks=1, bn_weight_init=0.0)
        self.act3 = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act1(self.conv1(x))
        y = self.act2(self.conv2(y))
        y = self.conv3(y)
        return self.act3(y + x)


class PatchMerging(nn.Module):
    """Channel change plus optional 2x downsampling.

    Input is either a feature map ``[B,C,H,W]`` or tokens ``[B,H*W,C]`` on the
    ``input_resolution`` grid; output is tokens ``[B,H'*W',out_dim]`` with ``H' = ceil(H/stride)``.
    """

    def __init__(self, *, input_resolution: tuple[int, int], dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        self.input_resolution = input_resolution
        self.act = nn.GELU()
        self.conv1 = Conv2dBN(dim, out_dim, 1, 1, 0)
        self.conv2 = Conv2dBN(out_dim, out_dim, 3, stride, 1, groups=out_dim)
        self.conv3 = Conv2dBN(out_dim, out_dim, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            h, w = self.input_resolution
            x = x.view(x.shape[0], h, w, x.shape[2]).permute(0, 3, 1, 2)
        x = self.act(self.conv1(x))
        x = self.act(self.conv2(x))
        x = self.conv3(x)
        return x.flatten(2).transpose(1, 2)


class ConvStage(nn.Module):
    """Stage 0: MBConv blocks on ``[B,C,H,W]``, then a :class:`PatchMerging` to tokens."""

    def __init__(self, *, dim: int, depth: int, expand_ratio: float, downsample: PatchMerging | None) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(MBConv(dim=dim, expand_ratio=expand_ratio) for _ in range(depth))
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        return x if self.downsample is None else self.downsample(x)


def window_bias_index(window_size: int) -> torch.Tensor:
    """Index table ``[N,N]`` (``N = window_size**2``) into the per-offset attention biases.

    Two positions of a window share a bias when their absolute row and column offsets are
    equal; offset ``(dy, dx)`` is stored at ``dy * window_size + dx``.
    """
    coords = torch.arange(window_size)
    ys = coords.repeat_interleave(window_size)
    xs = coords.repeat(window_size)
    dy = (ys[:, None] - ys[None, :]).abs()
    dx = (xs[:, None] - xs[None, :]).abs()
    return dy * window_size + dx


class Attention(nn.Module):
    """Multi-head self-attention with pre-LayerNorm and learned relative position biases.

    ``[B',N,C] -> [B',N,C]`` with ``N = window_size**2`` (one window per batch row).
    """

    def __init__(self, *, dim: int, num_heads: int, window_size: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.key_dim = dim // num_heads
        self.scale = self.key_dim**-0.5
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, window_size * window_size))
        self.window_size = window_size
        self.reset_derived_buffers()

    def reset_derived_buffers(self) -> None:
        """(Re)create ``attention_bias_idxs``, which is derived from the window size, not stored."""
        self.register_buffer("attention_bias_idxs", window_bias_index(self.window_size), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(self.norm(x)).view(b, n, self.num_heads, 3 * self.key_dim)
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.key_dim], dim=3)
        q, k, v = q.permute(0, 2, 1, 3), k.permute(0, 2, 1, 3), v.permute(0, 2, 1, 3)
        bias = self.attention_biases[:, self.attention_bias_idxs]
        attn = (q @ k.transpose(-2, -1)) * self.scale + bias
        attn = attn.softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(out)


class Mlp(nn.Module):
    """Pre-LayerNorm MLP with exact GELU: ``[...,C] -> [...,C]``."""

    def __init__(self, *, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class TinyViTBlock(nn.Module):
    """Window attention, depthwise local conv, MLP on tokens ``[B,H*W,C]`` (shape preserved).

    The grid is zero-padded bottom/right up to a multiple of ``window_size`` before the
    attention (padded tokens take part in it, as in the published model) and cropped after.
    """

    def __init__(
        self,
        *,
        dim: int,
        input_resolution: tuple[int, int],
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        local_conv_size: int,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.input_resolution = input_resolution
        self.window_size = window_size
        self.attn = Attention(dim=dim, num_heads=num_heads, window_size=window_size)
        self.mlp = Mlp(dim=dim, hidden_dim=int(dim * mlp_ratio))
        self.local_conv = Conv2dBN(dim, dim, ks=local_conv_size, stride=1, pad=local_conv_size // 2, groups=dim)

    def _window_attention(self, x: torch.Tensor) -> torch.Tensor:
        """Attention inside non-overlapping windows: ``[B,H*W,C] -> [B,H*W,C]``."""
        h, w = self.input_resolution
        ws = self.window_size
        b, n, c = x.shape
        pad_b = (ws - h % ws) % ws
        pad_r = (ws - w % ws) % ws
        x = x.view(b, h, w, c)
        if pad_b or pad_r:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        nh, nw = (h + pad_b) // ws, (w + pad_r) // ws
        x = x.view(b, nh, ws, nw, ws, c).transpose(2, 3).reshape(b * nh * nw, ws * ws, c)
        x = self.attn(x)
        x = x.view(b, nh, nw, ws, ws, c).transpose(2, 3).reshape(b, nh * ws, nw * ws, c)
        if pad_b or pad_r:
            x = x[:, :h, :w].contiguous()
        return x.view(b, n, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.input_resolution
        b, n, c = x.shape
        x = x + self._window_attention(x)
        x = self.local_conv(x.transpose(1, 2).reshape(b, c, h, w))
        x = x.view(b, c, n).transpose(1, 2)
        return x + self.mlp(x)


class AttentionStage(nn.Module):
    """A stage of :class:`TinyViTBlock` on tokens, optionally followed by a :class:`PatchMerging`."""

    def __init__(
        self,
        *,
        dim: int,
        input_resolution: tuple[int, int],
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        local_conv_size: int,
        downsample: PatchMerging | None,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TinyViTBlock(
                dim=dim,
                input_resolution=input_resolution,
                num_heads=num_heads,
                window_size=window_size,
                mlp_ratio=mlp_ratio,
                local_conv_size=local_conv_size,
            )
            for _ in range(depth)
        )
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        return x if self.downsample is None else self.downsample(x)


def _halve(size: int) -> int:
    """Output side of a 3x3, stride-2, padding-1 convolution."""
    return (size + 1) // 2


class TinyViT(nn.Module):
    """TinyViT backbone with a SAM neck: ``[B,3,S,S] -> [B,out_chans,S/16,S/16]``.

    ``img_size`` must be a multiple of 16. Stage ``i`` runs at stride ``4 * 2**i`` for
    ``i < 3``; the last stage stays at stride 16.
    """

    def __init__(
        self,
        *,
        img_size: int = 1024,
        in_chans: int = 3,
        embed_dims: Sequence[int] = (64, 128, 160, 320),
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (2, 4, 5, 10),
        window_sizes: Sequence[int] = (7, 7, 14, 7),
        mlp_ratio: float = 4.0,
        mbconv_expand_ratio: float = 4.0,
        local_conv_size: int = 3,
        out_chans: int = 256,
    ) -> None:
        super().__init__()
        if img_size <= 0 or img_size % 16:
            raise ValueError(f"img_size must be a positive multiple of 16, got {img_size}")
        n_stages = len(depths)
        if not len(embed_dims) == len(num_heads) == len(window_sizes) == n_stages or n_stages < 2:
            raise ValueError("embed_dims, depths, num_heads and window_sizes need one entry per stage (>= 2)")
        self.img_size = img_size
        self.patch_embed = PatchEmbed(in_chans=in_chans, embed_dim=embed_dims[0])

        side = _halve(_halve(img_size))
        self.layers = nn.ModuleList()
        for i in range(n_stages):
            resolution = (side, side)
            downsample = None
            if i < n_stages - 1:
                # The merge into the last stage keeps the resolution (output stride 16).
                stride = 1 if i == n_stages - 2 else 2
                downsample = PatchMerging(
                    input_resolution=resolution, dim=embed_dims[i], out_dim=embed_dims[i + 1], stride=stride
                )
                side = side if stride == 1 else _halve(side)
            if i == 0:
                stage: nn.Module = ConvStage(
                    dim=embed_dims[0], depth=depths[0], expand_ratio=mbconv_expand_ratio, downsample=downsample
                )
            else:
                stage = AttentionStage(
                    dim=embed_dims[i],
                    input_resolution=resolution,
                    depth=depths[i],
                    num_heads=num_heads[i],
                    window_size=window_sizes[i],
                    mlp_ratio=mlp_ratio,
                    local_conv_size=local_conv_size,
                    downsample=downsample,
                )
            self.layers.append(stage)
        self.grid_size = side

        self.neck = nn.Sequential(
            nn.Conv2d(embed_dims[-1], out_chans, kernel_size=1, bias=False),
            LayerNorm2d(out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(out_chans),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: normalised image ``[B,3,S,S]``; returns embeddings ``[B,out_chans,S/16,S/16]``."""
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        b, _, c = x.shape
        x = x.view(b, self.grid_size, self.grid_size, c).permute(0, 3, 1, 2)
        return self.neck(x)


def build_tiny_vit_5m(*, img_size: int = 1024) -> TinyViT:
    """TinyViT-5M as used by MobileSAM (``vit_t``), output ``[B,256,img_size/16,img_size/16]``."""
    return TinyViT(
        img_size=img_size,
        embed_dims=(64, 128, 160, 320),
        depths=(2, 2, 6, 2),
        num_heads=(2, 4, 5, 10),
        window_sizes=(7, 7, 14, 7),
        mlp_ratio=4.0,
        mbconv_expand_ratio=4.0,
        local_conv_size=3,
    )
