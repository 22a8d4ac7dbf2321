"""The SAM model: image encoder + prompt encoder + mask decoder, in export-ready form."""

from __future__ import annotations

import torch
from torch import nn

from .mask_decoder import MaskDecoder
from .prompt_encoder import PromptEncoder

PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


class Sam(nn.Module):
    """Segment Anything with a swappable image encoder.

    The state-dict keys are those of the official checkpoints (``image_encoder.*``,
    ``prompt_encoder.*``, ``mask_decoder.*``); the pixel statistics are non-persistent buffers.
    """

    mask_threshold: float = 0.0

    def __init__(
        self,
        *,
        image_encoder: nn.Module,
        prompt_encoder: PromptEncoder,
        mask_decoder: MaskDecoder,
        image_size: int,
        arch: str,
        pixel_mean: tuple[float, float, float] = PIXEL_MEAN,
        pixel_std: tuple[float, float, float] = PIXEL_STD,
    ) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.image_size = image_size
        self.arch = arch
        self._normalisation = (tuple(pixel_mean), tuple(pixel_std))
        self.reset_derived_buffers()

    def reset_derived_buffers(self) -> None:
        """(Re)create the buffers that are not in the checkpoint: ``pixel_mean``/``pixel_std``."""
        mean, std = self._normalisation
        self.register_buffer("pixel_mean", torch.tensor(mean).view(3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std).view(3, 1, 1), persistent=False)

    @property
    def embedding_size(self) -> tuple[int, int]:
        """(h, w) of the image embedding, ``S / 16``."""
        return self.prompt_encoder.image_embedding_size

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Image embeddings of normalised, zero-padded images.

        Args:
            images: ``[B, 3, S, S]`` float, ``(pixel - mean) / std``, padded bottom/right.

        Returns:
            ``[B, 256, S/16, S/16]``.
        """
        return self.image_encoder(images)

    def decode(
        self,
        image_embeddings: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode ``B`` prompts against one image embedding; returns every mask token.

        Args:
            image_embeddings: ``[1, 256, h, w]``.
            point_coords: ``[B, N, 2]`` (x, y) in the resized input frame (pixels). A box is two
                points labelled 2 and 3; with clicks but no box, a (0, 0) point labelled -1 is
                appended, as the official predictor does. With neither clicks nor a box the
                official model sees no sparse token at all: pass ``N = 0`` (a lone padding
                point changes the result).
            point_labels: ``[B, N]`` in {-1, 0, 1, 2, 3}.
            mask_input: ``[B, 1, 4h, 4w]`` low-resolution mask logits from an earlier prediction.
            has_mask_input: ``[B]``, 1 where ``mask_input`` is used, 0 where it is ignored.

        Returns:
            iou_predictions ``[B, 4]`` and low_res_masks ``[B, 4, 4h, 4w]`` (logits); index 0 is
            the single-mask output, 1..3 the multimask outputs.
        """
        sparse = self.prompt_encoder.embed_points(point_coords, point_labels)
        dense = self.prompt_encoder.embed_masks(mask_input, has_mask_input)
        masks, iou = self.mask_decoder(image_embeddings, self.prompt_encoder.get_dense_pe(), sparse, dense)
        return iou, masks
