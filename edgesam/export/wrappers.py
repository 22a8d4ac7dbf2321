"""Export-ready torch modules: the graphs that become the bundle's ONNX files.

Each wrapper holds a reference to an :class:`~edgesam.models.sam.Sam` and exposes one
``forward`` with plain tensor inputs. None of them branches on tensor values, uses
``repeat_interleave`` or one-hot encodings, so the TorchScript tracer records one graph that
is valid for every prompt count and batch size.

Graphs (``S`` = model input side, ``h = w = S / 16``):

* :class:`EncoderOnnx` -- ``image [1, 3, S, S]`` (normalised, zero padded) ->
  ``image_embeddings [1, 256, h, w]``.
* :class:`DecoderOnnx` -- edgesam's decoder: every mask token, no upscaling (selection and
  upscaling happen in the numpy predictor).
* :class:`SamOfficialDecoderOnnx` -- segment_anything's ONNX decoder interface (as produced
  by its ``scripts/export_onnx_model.py``), for front ends written against it such as SAM's
  web demo.

Both decoder graphs trace :class:`~edgesam.models.factored_decoder.FactoredDecoder`, which
computes ``Sam.decode`` with about half the work per prompt; export verification compares
the graphs against ``Sam.decode`` itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgesam.models.factored_decoder import FactoredDecoder
from edgesam.models.sam import Sam

__all__ = [
    "DecoderOnnx",
    "EncoderOnnx",
    "SamOfficialDecoderOnnx",
]


class EncoderOnnx(nn.Module):
    """Image encoder graph: ``image float32 [1, 3, S, S]`` -> ``float32 [1, 256, S/16, S/16]``.

    The input is already normalised with the model's pixel mean/std and zero padded
    bottom/right (what :func:`edgesam.predictor.transforms.normalize_and_pad` produces).
    """

    def __init__(self, model: Sam) -> None:
        super().__init__()
        self.image_encoder = model.image_encoder
        self.eval()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.image_encoder(image)


class DecoderOnnx(nn.Module):
    """Prompt encoder + mask decoder graph with dynamic prompt batch ``B`` and point count ``N``.

    Inputs:
        image_embeddings: float32 ``[1, 256, h, w]``.
        point_coords: float32 ``[B, N, 2]``, ``(x, y)`` in the resized ``S x S`` input frame.
        point_labels: float32 ``[B, N]`` in {-1 pad, 0 neg, 1 pos, 2 box top-left, 3 box bottom-right}.
        mask_input: float32 ``[B, 1, 4h, 4w]`` low-resolution logits.
        has_mask_input: float32 ``[B]``, 1 to use ``mask_input``, 0 to ignore it.

    Outputs:
        iou_predictions float32 ``[B, 4]`` and low_res_masks float32 ``[B, 4, 4h, 4w]`` (logits)
        for all four mask tokens (token 0 single-mask, tokens 1..3 multimask).
    """

    def __init__(self, model: Sam) -> None:
        super().__init__()
        self.decoder = FactoredDecoder(model)
        self.eval()

    def forward(
        self,
        image_embeddings: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decoder(image_embeddings, point_coords, point_labels, mask_input, has_mask_input)


class SamOfficialDecoderOnnx(nn.Module):
    """segment_anything's ONNX decoder interface on top of any edgesam model.

    Inputs (as in segment_anything's exported decoder):
        image_embeddings: float32 ``[1, 256, h, w]``.
        point_coords: float32 ``[B, N, 2]`` in the resized input frame (the caller applies
            ``ResizeLongestSide.apply_coords``; without a box append a ``(0, 0)`` point
            labelled -1). ``B`` is 1 for SAM's tools; edgesam also accepts larger ``B``.
        point_labels: float32 ``[B, N]``.
        mask_input: float32 ``[B, 1, 4h, 4w]``.
        has_mask_input: float32 ``[B]``.
        orig_im_size: float32 ``[2]`` = ``(H, W)`` of the original image. float32 as in SAM's
            interface (its web demo feeds a Float32Array); the graph casts it to int64 itself.
            Runtimes that want integer shape inputs (TensorRT) should use :class:`DecoderOnnx`
            and upscale on the host instead.

    Outputs:
        masks: float32 ``[B, M, H, W]`` logits at the original size (threshold at 0.0).
        iou_predictions: float32 ``[B, M]``.
        low_res_masks: float32 ``[B, M, 4h, 4w]``.

    ``M`` is 1 with ``return_single_mask=True`` (what SAM's web demo notebook exports): the
    single-mask token when the prompt has more than one real point or a box (``N > 2``), the
    best-scoring multimask token otherwise, chosen by SAM's score-reweighting trick (no
    control flow). With ``return_single_mask=False`` all four tokens are returned.
    """

    def __init__(self, model: Sam, *, return_single_mask: bool = True) -> None:
        super().__init__()
        self.decoder = FactoredDecoder(model)
        self.image_size = int(model.image_size)
        self.return_single_mask = return_single_mask
        weights = torch.zeros(1, model.mask_decoder.num_mask_tokens)
        weights[0, 0] = 1000.0  # SAM's reweighting: favours token 0 once N > 2.5
        self.register_buffer("score_reweight", weights, persistent=False)
        self.eval()

    def _select(
        self, masks: torch.Tensor, iou: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pick one token per prompt: ``[B, 4, h, w]``, ``[B, 4]`` -> ``[B, 1, h, w]``, ``[B, 1]``."""
        num_points = torch.ones_like(labels).sum(dim=1, keepdim=True)  # [B, 1], from the shape
        best = torch.argmax(iou + (num_points - 2.5) * self.score_reweight, dim=1, keepdim=True)  # [B, 1]
        iou = torch.gather(iou, 1, best)
        index = best[:, :, None, None].expand(-1, -1, masks.shape[2], masks.shape[3])
        return torch.gather(masks, 1, index), iou

    def _upscale(self, masks: torch.Tensor, orig_im_size: torch.Tensor) -> torch.Tensor:
        """``[B, M, 4h, 4w]`` -> ``[B, M, H, W]``: to ``S x S``, crop the padding, to ``(H, W)``."""
        s = self.image_size
        masks = F.interpolate(masks, size=(s, s), mode="bilinear", align_corners=False)
        size = orig_im_size.to(torch.float32)
        scaled = torch.floor(size * (s / torch.max(size)) + 0.5).to(torch.int64)
        masks = masks[..., : scaled[0], : scaled[1]]
        out = orig_im_size.to(torch.int64)
        return F.interpolate(masks, size=(out[0], out[1]), mode="bilinear", align_corners=False)

    def forward(
        self,
        image_embeddings: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
        orig_im_size: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        iou, low_res = self.decoder(image_embeddings, point_coords, point_labels, mask_input, has_mask_input)
        if self.return_single_mask:
            low_res, iou = self._select(low_res, iou, point_labels)
        return self._upscale(low_res, orig_im_size), iou, low_res
