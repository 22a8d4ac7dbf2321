"""Prompt encoder: points, boxes and low-resolution masks -> sparse and dense embeddings."""

from __future__ import annotations

import math

import torch
from torch import nn

from .layers import LayerNorm2d


class PositionEmbeddingRandom(nn.Module):
    """Fourier features of (x, y) with a fixed random Gaussian frequency matrix."""

    def __init__(self, num_pos_feats: int = 64, scale: float | None = None) -> None:
        super().__init__()
        scale = 1.0 if scale is None or scale <= 0.0 else scale
        self.register_buffer("positional_encoding_gaussian_matrix", scale * torch.randn((2, num_pos_feats)))

    def _pe_encoding(self, coords: torch.Tensor) -> torch.Tensor:
        """``[..., 2]`` coordinates in [0, 1] -> ``[..., 2 * num_pos_feats]``."""
        matrix = self.positional_encoding_gaussian_matrix
        coords = (2 * coords.to(matrix.dtype) - 1) @ matrix
        coords = 2 * math.pi * coords
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1)

    def forward(self, size: tuple[int, int]) -> torch.Tensor:
        """Dense encoding of the centres of an ``h x w`` grid: ``[C, h, w]``."""
        h, w = size
        device = self.positional_encoding_gaussian_matrix.device
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
        grid = torch.stack([xs[None, :].expand(h, w), ys[:, None].expand(h, w)], dim=-1)
        return self._pe_encoding(grid).permute(2, 0, 1)

    def forward_with_coords(self, coords: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """Encode pixel coordinates ``[B, N, 2]`` (x, y) of an image of ``image_size`` (h, w)."""
        scale = coords.new_tensor([1.0 / image_size[1], 1.0 / image_size[0]], dtype=torch.float32)
        return self._pe_encoding(coords.float() * scale)


class PromptEncoder(nn.Module):
    """Embeds prompts for SAM's mask decoder.

    Args:
        embed_dim: prompt embedding width (256 for every official model).
        image_embedding_size: (h, w) of the image embedding, ``S / 16``.
        input_image_size: (S, S), the padded model input size.
        mask_in_chans: hidden channels of the mask downscaling stack.
    """

    def __init__(
        self,
        embed_dim: int,
        image_embedding_size: tuple[int, int],
        input_image_size: tuple[int, int],
        mask_in_chans: int,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.input_image_size = input_image_size
        self.image_embedding_size = image_embedding_size
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        # 0: negative point, 1: positive point, 2: box top-left, 3: box bottom-right
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self) -> torch.Tensor:
        """Positional encoding of the image embedding grid: ``[1, C, h, w]``."""
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)

    def embed_points(self, coords: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Sparse embeddings of labelled points, without value-dependent branching.

        Args:
            coords: ``[B, N, 2]`` (x, y) in the padded input frame (pixels).
            labels: ``[B, N]``: -1 padding, 0 negative, 1 positive, 2 box top-left,
                3 box bottom-right.

        Returns:
            ``[B, N, embed_dim]``.
        """
        labels = labels.to(coords.dtype)[..., None]
        pe = self.pe_layer.forward_with_coords(coords + 0.5, self.input_image_size)
        is_pad = (labels == -1).to(pe.dtype)
        emb = pe * (1.0 - is_pad) + is_pad * self.not_a_point_embed.weight
        for i, point_embedding in enumerate(self.point_embeddings):
            emb = emb + (labels == i).to(pe.dtype) * point_embedding.weight
        return emb

    def embed_masks(self, mask_input: torch.Tensor, has_mask_input: torch.Tensor) -> torch.Tensor:
        """Dense embeddings: ``[B, 1, 4h, 4w]`` logits, ``[B]`` flags -> ``[B, C, h, w]``."""
        flag = has_mask_input.to(mask_input.dtype).reshape(-1, 1, 1, 1)
        no_mask = self.no_mask_embed.weight.reshape(1, -1, 1, 1)
        return flag * self.mask_downscaling(mask_input) + (1.0 - flag) * no_mask
