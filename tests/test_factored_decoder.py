"""FactoredDecoder computes Sam.decode: every prompt kind, mask flags, batch sizes, widths."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from edgesam.models import build_sam  # noqa: E402
from edgesam.models.factored_decoder import FactoredDecoder  # noqa: E402


def _perturbed(arch: str, image_size: int | None = None) -> torch.nn.Module:
    """A model whose decoder weights are far from init, so that masks are not all near zero."""
    torch.manual_seed(0)
    model = build_sam(arch, image_size=image_size).eval()
    with torch.no_grad():
        for p in model.prompt_encoder.parameters():
            p.add_(torch.randn_like(p) * 0.2)
        for p in model.mask_decoder.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def _prompts(model: torch.nn.Module, labels: list[list[float]], has: list[float]) -> tuple[torch.Tensor, ...]:
    b, n = len(labels), len(labels[0])
    s, hw = model.image_size, model.image_size // 16
    g = torch.Generator().manual_seed(1)
    emb = torch.randn(1, model.prompt_encoder.embed_dim, hw, hw, generator=g)
    coords = torch.rand(b, n, 2, generator=g) * s
    mask = torch.randn(b, 1, 4 * hw, 4 * hw, generator=g) * 3
    return emb, coords, torch.tensor(labels), mask, torch.tensor(has)


def _assert_same(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
    with torch.no_grad():
        iou_ref, masks_ref = model.decode(*inputs)
        iou, masks = FactoredDecoder(model)(*inputs)
    assert masks.shape == masks_ref.shape and iou.shape == iou_ref.shape
    scale = float(masks_ref.abs().max())
    assert scale > 0.1  # the check below means something
    torch.testing.assert_close(iou, iou_ref, rtol=0, atol=1e-5)
    torch.testing.assert_close(masks, masks_ref, rtol=0, atol=1e-5 * scale)


LABELS = [[1, 0, -1], [2, 3, 1], [1, 1, 1], [2, 3, -1], [0, 1, -1]]


@pytest.mark.parametrize("has", [[0, 0, 0, 0, 0], [1, 1, 1, 1, 1], [0, 1, 0, 1, 1]])
def test_matches_sam_decode_for_every_prompt_kind(has: list[float]) -> None:
    model = _perturbed("edgesam_demo")
    _assert_same(model, _prompts(model, LABELS, has))


def test_matches_with_no_sparse_prompt_and_single_prompt() -> None:
    model = _perturbed("edgesam_demo")
    emb, coords, labels, mask, has = _prompts(model, LABELS, [1, 0, 1, 0, 1])
    _assert_same(model, (emb, coords[:, :0], labels[:, :0], mask, has))  # mask-only prompts (N = 0)
    _assert_same(model, (emb, coords[:1], labels[:1], mask[:1], has[:1]))


def test_matches_at_sam_width() -> None:
    """SAM's own decoder width (256, 8 heads) on a 256 px grid."""
    model = _perturbed("vit_t", image_size=256)
    _assert_same(model, _prompts(model, LABELS[:3], [0, 1, 0]))


def test_rejects_a_transformer_without_sam_first_layer() -> None:
    model = build_sam("edgesam_demo")
    model.mask_decoder.transformer.layers[0].skip_first_layer_pe = False
    with pytest.raises(ValueError, match="first layer"):
        FactoredDecoder(model)
