"""SAM's prompt encoder (dense part) + mask decoder, refactored for many prompts per image.

:class:`FactoredDecoder` computes the same function as ``Sam.decode`` (equal up to float
rounding) in less time per prompt; the benchmark suite's decoder cases (``edgesam bench``:
``decode_point``, ``decode_box``, ``decode_box16``) measure it per backend and the README's
"The decoder graph" paragraph quotes the figures. SAM's decoder spends almost all of its time on the ``h*w``
image tokens (4,096 at 1024 px, each ``C = 256`` wide), once per prompt, although only a few
prompt tokens (``T`` = 5 output tokens + the points, 7 for a click) attend to or are attended
by them. Four exact rewrites exploit that:

1. **Layer 0 is shared.** Before the first image->token attention the image tokens are the
   image embedding plus the dense prompt embedding. Without a mask prompt that is the same
   for every prompt, so the first layer's image-side ``q/k/v`` projections run once per call,
   not once per prompt. A mask prompt adds ``has * (f @ W_m + b_m - no_mask)``, where ``f``
   are the 16 channels before the mask embedding's last 1x1 convolution: a rank-17 update,
   carried as coefficients (``[B, hw, 17]``) against a fixed basis through the layer's
   attention and added in only at its output.
2. **Projections are absorbed into the few tokens.** Token->image logits
   ``q . (W_k (x + pe))`` are computed as ``(W_k^T q) . (x + pe)`` and values as
   ``W_v (p @ x)`` (softmax rows sum to one), so the image tokens are never projected;
   image->token attention likewise folds ``W_q`` into the token keys and ``W_o`` (with its
   bias) into the token values. That replaces 128-wide projections of every image token by
   products with ``H*T = 56`` absorbed rows and drops the per-head transposes of
   ``[B, hw, 128]`` tensors.
3. **Constant terms are dropped where softmax cancels them** (``q . b_k`` over image tokens).
4. **Transposed convolutions become matmuls in sub-pixel order.** The two stride-2 2x2
   ``ConvTranspose2d`` of the upscaling head are per-pixel linear maps; they run as 2-D
   GEMMs with bias, and the sub-pixels are put in place by moving whole rows: the first
   conv's ``(kx1, C1)`` rows once, the final logits' ``(ky2, kx2)`` pairs once.

Everything is plain tensor algebra with dynamic ``B`` and ``T``, so the module exports to ONNX
(the bundle's decoder graphs trace it) and runs on every backend.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .sam import Sam
from .transformer import Attention, TwoWayAttentionBlock

__all__ = ["FactoredDecoder"]


class _Heads:
    """Per-head views of an :class:`Attention`'s weights (``H`` heads of width ``d``)."""

    def __init__(self, att: Attention) -> None:
        self.att = att
        self.h = att.num_heads
        self.d = att.internal_dim // att.num_heads
        c = att.embedding_dim
        self.wq = att.q_proj.weight.reshape(self.h, self.d, c)  # [H, d, C]
        self.wk = att.k_proj.weight.reshape(self.h, self.d, c)
        self.wv = att.v_proj.weight.reshape(self.h, self.d, c)
        self.wo = att.out_proj.weight.t().reshape(self.h, self.d, c)  # [H, d, C]: rows of W_o^T per head
        self.scale = 1.0 / math.sqrt(self.d)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, T, H*d]`` -> ``[B, H, T, d]``."""
        b, t, _ = x.shape
        return x.reshape(b, t, self.h, self.d).transpose(1, 2)

    def merge(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, H, T, d]`` -> ``[B, T, H*d]`` and the output projection."""
        b, _, t, _ = x.shape
        return self.att.out_proj(x.transpose(1, 2).reshape(b, t, self.h * self.d))

    def token_values(self, tokens: torch.Tensor) -> torch.Tensor:
        """Per-(head, token) rows of ``v_h W_o,h^T + b_o / H``: ``[B, T, C]`` -> ``[B, H*T, C]``.

        Weighted by image->token probabilities (each head's row sums to one) these give the
        attention output including the output projection's bias.
        """
        v = self.split(self.att.v_proj(tokens))  # [B, H, T, d]
        u = v @ self.wo + self.att.out_proj.bias / self.h  # [B, H, T, C]
        return u.reshape(u.shape[0], -1, u.shape[-1])


class FactoredDecoder(nn.Module):
    """``Sam.decode`` rewritten for many prompts per image (same inputs, same outputs).

    Holds references to the model's prompt encoder and mask decoder (no copied weights).
    """

    def __init__(self, model: Sam) -> None:
        super().__init__()
        self.prompt_encoder = model.prompt_encoder
        self.mask_decoder = model.mask_decoder
        layers = list(model.mask_decoder.transformer.layers)
        if not layers or not layers[0].skip_first_layer_pe:
            raise ValueError("FactoredDecoder expects SAM's two-way transformer (first layer without PE)")

    # -- helpers on the image side ------------------------------------------------------------

    @staticmethod
    def _shared_logits(q: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Per-head dot products with shared image-side vectors.

        ``q [B, H, T, d]``, ``keys [N, H*d]`` -> ``[B, H, T, N]`` (one GEMM per head).
        """
        b, h, t, d = q.shape
        k = keys.reshape(-1, h, d).permute(1, 2, 0)  # [H, d, N]
        out = q.transpose(0, 1).reshape(h, b * t, d) @ k  # [H, B*T, N]
        return out.reshape(h, b, t, -1).transpose(0, 1)

    @staticmethod
    def _shared_values(p: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """``p [B, H, T, N]`` against shared ``values [N, H*d]`` -> ``[B, H, T, d]``."""
        b, h, t, n = p.shape
        v = values.reshape(n, h, -1).transpose(0, 1)  # [H, N, d]
        out = p.transpose(0, 1).reshape(h, b * t, n) @ v  # [H, B*T, d]
        return out.reshape(h, b, t, -1).transpose(0, 1)

    def _layer0(
        self,
        layer: TwoWayAttentionBlock,
        queries: torch.Tensor,
        query_pe: torch.Tensor,
        image: torch.Tensor,
        image_pe: torch.Tensor,
        coef: torch.Tensor,
        basis: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """First two-way block with image tokens ``image [N, C] + coef [B, N, R] @ basis [R, C]``.

        Returns the tokens ``[B, T, C]`` and the (materialised) image tokens ``[B, N, C]``.
        """
        queries = layer.norm1(layer.self_attn(q=queries, k=queries, v=queries))

        # token -> image: keys/values are shared projections plus the low-rank mask term
        t2i = _Heads(layer.cross_attn_token_to_image)
        q = t2i.split(t2i.att.q_proj(queries + query_pe))  # [B, H, T, d]
        keys = t2i.att.k_proj(image + image_pe)  # [N, D]
        values = t2i.att.v_proj(image)
        logits = self._shared_logits(q, keys) + self._lowrank_logits(q, coef, basis @ t2i.wk.transpose(1, 2))
        p = torch.softmax(logits * t2i.scale, dim=-1)  # [B, H, T, N]
        b, h, t, n = p.shape
        pc = (p.reshape(b, h * t, n) @ coef).reshape(b, h, t, -1)  # [B, H, T, R]
        out = self._shared_values(p, values) + pc @ (basis @ t2i.wv.transpose(1, 2))  # [B, H, T, d]
        queries = layer.norm2(queries + t2i.merge(out))
        queries = layer.norm3(queries + layer.mlp(queries))

        # image -> token: shared image queries plus the low-rank term, absorbed output projection
        i2t = _Heads(layer.cross_attn_image_to_token)
        k = i2t.split(i2t.att.k_proj(queries + query_pe))  # [B, H, T, d]
        image_q = i2t.att.q_proj(image + image_pe)  # [N, D]
        logits = self._shared_logits(k, image_q) + self._lowrank_logits(k, coef, basis @ i2t.wq.transpose(1, 2))
        probs = torch.softmax(logits.permute(0, 3, 1, 2) * i2t.scale, dim=-1)  # [B, N, H, T]
        u = i2t.token_values(queries)  # [B, H*T, C]
        update = torch.cat([coef, probs.reshape(b, n, h * t)], dim=2) @ torch.cat(
            [basis.expand(b, -1, -1), u], dim=1
        )
        keys_out = layer.norm4(image + update)
        return queries, keys_out

    @staticmethod
    def _lowrank_logits(q: torch.Tensor, coef: torch.Tensor, basis_h: torch.Tensor) -> torch.Tensor:
        """``q [B, H, T, d]`` . ``coef [B, N, R] @ basis_h [H, R, d]`` -> ``[B, H, T, N]``."""
        b, h, t, _ = q.shape
        c = q @ basis_h.transpose(1, 2)  # [B, H, T, R]
        return (c.reshape(b, h * t, -1) @ coef.transpose(1, 2)).reshape(b, h, t, -1)

    def _token_to_image(
        self, att: Attention, queries: torch.Tensor, keys: torch.Tensor, keys_pe: torch.Tensor
    ) -> torch.Tensor:
        """Token->image attention with the key/value projections absorbed into the tokens.

        ``queries [B, T, C]`` (with PE), ``keys [B, N, C]``, ``keys_pe = keys + pe`` -> ``[B, T, C]``.
        """
        a = _Heads(att)
        q = a.split(att.q_proj(queries))  # [B, H, T, d]
        b, h, t, _ = q.shape
        qk = (q @ a.wk).reshape(b, h * t, -1)  # [B, H*T, C]; q . b_k is constant over keys
        p = torch.softmax((qk @ keys_pe.transpose(1, 2)) * a.scale, dim=-1)  # [B, H*T, N]
        pv = (p @ keys).reshape(b, h, t, -1)  # [B, H, T, C]
        out = pv @ a.wv.transpose(1, 2) + att.v_proj.bias.reshape(h, 1, a.d)  # [B, H, T, d]
        return a.merge(out)

    def _image_to_token(
        self, att: Attention, keys_pe: torch.Tensor, tokens_pe: torch.Tensor, tokens: torch.Tensor
    ) -> torch.Tensor:
        """Image->token attention with ``W_q`` folded into the token keys and ``W_o`` into the values.

        ``keys_pe [B, N, C]`` (image tokens + PE), ``tokens_pe``/``tokens [B, T, C]`` -> ``[B, N, C]``.
        """
        a = _Heads(att)
        k = a.split(att.k_proj(tokens_pe))  # [B, H, T, d]
        b, h, t, _ = k.shape
        m = (a.wq.transpose(1, 2) @ k.transpose(2, 3)).permute(0, 2, 1, 3).reshape(b, -1, h * t)  # [B, C, H*T]
        bias = (k @ att.q_proj.bias.reshape(h, a.d, 1)).reshape(b, 1, h * t)
        logits = (keys_pe @ m + bias).reshape(b, -1, h, t)
        probs = torch.softmax(logits * a.scale, dim=-1).reshape(b, -1, h * t)  # [B, N, H*T]
        return probs @ a.token_values(tokens)

    # -- upscaling ------------------------------------------------------------------------------

    def _upscale_masks(self, keys: torch.Tensor, hyper_in: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """``keys [B, N, C]``, ``hyper_in [B, M, C/8]`` -> mask logits ``[B, M, 4h, 4w]``.

        Both 2x2 stride-2 transposed convolutions run as 2-D matmuls with bias (one GEMM each),
        their outputs' columns ordered ``(ky, kx, channel)``. After the first, one transpose of
        whole ``(kx1, C1)`` rows puts the ``2h x 2w`` grid in raster order; the hypernetwork
        contraction then gives ``[B, M, 2h, 2w, ky2, kx2]``, and a last transpose of 2-float
        pairs interleaves the second sub-pixels. Moving contiguous rows this way is several times
        cheaper than one 8-D transpose of the logits.
        """
        up1, ln, act1, up2, act2 = self.mask_decoder.output_upscaling
        b, n, c = keys.shape
        h, w = hw
        c1, c2 = up1.out_channels, up2.out_channels
        w1 = up1.weight.reshape(c, c1, 4).transpose(1, 2).reshape(c, 4 * c1)  # columns (ky1, kx1, c1)
        x = keys.reshape(b * n, c) @ w1 + up1.bias.repeat(4)  # [B*N, 4*C1]
        x = x.reshape(b, h, w, 2, 2 * c1).transpose(2, 3).reshape(b * n * 4, c1)  # rows (b, 2h, 2w)
        x = act1(F.layer_norm(x, (c1,), ln.weight, ln.bias, ln.eps))
        w2 = up2.weight.reshape(c1, c2, 4).transpose(1, 2).reshape(c1, 4 * c2)  # columns (ky2, kx2, c2)
        x = act2(x @ w2 + up2.bias.repeat(4)).reshape(b, n * 16, c2)  # rows (2h, 2w, ky2, kx2)
        masks = hyper_in @ x.transpose(1, 2)  # [B, M, N*16]
        masks = masks.reshape(b, -1, 2 * h, 2 * w, 2, 2).transpose(3, 4)
        return masks.reshape(b, -1, 4 * h, 4 * w)

    # -- forward --------------------------------------------------------------------------------

    def forward(
        self,
        image_embeddings: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Same contract as :meth:`edgesam.models.sam.Sam.decode`.

        Args:
            image_embeddings: ``[1, C, h, w]``.
            point_coords: ``[B, N, 2]``; point_labels: ``[B, N]``.
            mask_input: ``[B, 1, 4h, 4w]``; has_mask_input: ``[B]``.

        Returns:
            iou_predictions ``[B, 4]`` and low_res_masks ``[B, 4, 4h, 4w]``.
        """
        pe, dec = self.prompt_encoder, self.mask_decoder
        tr = dec.transformer
        _, c, h, w = image_embeddings.shape
        sparse = pe.embed_points(point_coords, point_labels)
        b = sparse.shape[0]
        tokens = torch.cat([dec.iou_token.weight, dec.mask_tokens.weight], dim=0)
        tokens = torch.cat([tokens.unsqueeze(0).expand(b, -1, -1), sparse], dim=1)  # [B, T, C]

        # image tokens: shared (embedding + no-mask) plus, for mask prompts, a rank-17 update
        no_mask = pe.no_mask_embed.weight  # [1, C]
        image = image_embeddings.reshape(c, h * w).t() + no_mask  # [N, C]
        image_pe = pe.get_dense_pe().reshape(c, h * w).t()  # [N, C]
        last = pe.mask_downscaling[-1]
        f = pe.mask_downscaling[:-1](mask_input).flatten(2).transpose(1, 2)  # [B, N, 16]
        flag = has_mask_input.to(f.dtype).reshape(-1, 1, 1)
        coef = torch.cat([f, torch.ones_like(f[..., :1])], dim=2) * flag  # [B, N, 17]
        basis = torch.cat([last.weight.flatten(1).t(), (last.bias - no_mask[0]).unsqueeze(0)], dim=0)  # [17, C]

        queries, keys = self._layer0(tr.layers[0], tokens, tokens, image, image_pe, coef, basis)
        for layer in tr.layers[1:]:
            q = queries + tokens
            queries = layer.norm1(queries + layer.self_attn(q=q, k=q, v=queries))
            keys_pe = keys + image_pe
            queries = layer.norm2(
                queries + self._token_to_image(layer.cross_attn_token_to_image, queries + tokens, keys, keys_pe)
            )
            queries = layer.norm3(queries + layer.mlp(queries))
            keys = layer.norm4(
                keys + self._image_to_token(layer.cross_attn_image_to_token, keys_pe, queries + tokens, queries)
            )
        final = self._token_to_image(tr.final_attn_token_to_image, queries + tokens, keys, keys + image_pe)
        queries = tr.norm_final_attn(queries + final)

        mask_tokens = queries[:, 1 : 1 + dec.num_mask_tokens, :]
        hyper_in = torch.stack(
            [mlp(mask_tokens[:, i, :]) for i, mlp in enumerate(dec.output_hypernetworks_mlps)], dim=1
        )
        masks = self._upscale_masks(keys, hyper_in, (h, w))
        return dec.iou_prediction_head(queries[:, 0, :]), masks
