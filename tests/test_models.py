"""Model structure: official layouts, shapes at small sizes, decode semantics."""

from __future__ import annotations

import pytest
import torch

from edgesam.models import MODELS, build_sam
from layouts import load_layout

OFFICIAL = ["vit_b", "vit_l", "vit_h", "vit_t", "edge_sam"]
UNUSED = ("image_encoder.head.", "image_encoder.norm_head.")


@pytest.mark.parametrize("arch", OFFICIAL)
def test_state_dict_reproduces_official_layout(arch: str) -> None:
    layout = load_layout(arch)
    with torch.device("meta"):
        model = build_sam(arch)
    ours = {k: [list(v.shape), str(v.dtype).removeprefix("torch.")] for k, v in model.state_dict().items()}
    theirs = {k: v for k, v in layout.items() if not k.startswith(UNUSED)}
    assert sorted(set(ours) ^ set(theirs)) == []
    assert {k: (v, theirs[k]) for k, v in ours.items() if v != theirs[k]} == {}


@pytest.mark.parametrize("arch", ["vit_b", "vit_t", "edge_sam"])
def test_small_input_gives_proportional_grid(arch: str) -> None:
    model = build_sam(arch, image_size=256)
    with torch.inference_mode():
        emb = model.encode(torch.randn(1, 3, 256, 256))
        assert emb.shape == (1, 256, 16, 16)
        iou, masks = model.decode(
            emb,
            torch.tensor([[[100.0, 80.0], [0.0, 0.0]], [[10.0, 20.0], [200.0, 220.0]]]),
            torch.tensor([[1.0, -1.0], [2.0, 3.0]]),
            torch.zeros(2, 1, 64, 64),
            torch.zeros(2),
        )
    assert iou.shape == (2, 4) and masks.shape == (2, 4, 64, 64)
    assert torch.isfinite(masks).all()


def test_image_size_must_be_multiple_of_64() -> None:
    with pytest.raises(ValueError, match="multiple of 64"):
        build_sam("vit_t", image_size=300)


def test_unknown_arch_lists_known() -> None:
    with pytest.raises(ValueError, match="vit_t"):
        build_sam("vit_x")


def _small_decoder_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_sam("vit_b", image_size=256)


def test_padding_point_and_prompt_batch_are_independent() -> None:
    """Each prompt of a batch decodes as if alone; a pad point differs from a real point."""
    model = _small_decoder_model()
    emb = torch.randn(1, 256, 16, 16)
    coords = torch.tensor([[[50.0, 60.0], [0.0, 0.0]], [[30.0, 40.0], [180.0, 200.0]]])
    labels = torch.tensor([[1.0, -1.0], [2.0, 3.0]])
    none = torch.zeros(2, 1, 64, 64)
    with torch.inference_mode():
        iou_b, masks_b = model.decode(emb, coords, labels, none, torch.zeros(2))
        for i in range(2):
            iou_1, masks_1 = model.decode(emb, coords[i : i + 1], labels[i : i + 1], none[:1], torch.zeros(1))
            torch.testing.assert_close(masks_1[0], masks_b[i], atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(iou_1[0], iou_b[i], atol=1e-5, rtol=1e-5)
        _, masks_pos = model.decode(emb, coords[:1], torch.tensor([[1.0, 1.0]]), none[:1], torch.zeros(1))
    assert not torch.allclose(masks_pos[0], masks_b[0])


def test_mask_input_is_used_only_when_flagged() -> None:
    model = _small_decoder_model()
    emb = torch.randn(1, 256, 16, 16)
    coords = torch.tensor([[[50.0, 60.0], [0.0, 0.0]]])
    labels = torch.tensor([[1.0, -1.0]])
    mask = torch.randn(1, 1, 64, 64) * 5
    with torch.inference_mode():
        _, off_zero = model.decode(emb, coords, labels, torch.zeros_like(mask), torch.zeros(1))
        _, off_mask = model.decode(emb, coords, labels, mask, torch.zeros(1))
        _, on_mask = model.decode(emb, coords, labels, mask, torch.ones(1))
    torch.testing.assert_close(off_zero, off_mask)
    assert not torch.allclose(on_mask, off_mask)


def test_registry_specs_are_frozen() -> None:
    spec = MODELS["vit_t"]
    with pytest.raises(AttributeError):
        spec.arch = "other"  # type: ignore[misc]


def test_reduced_precision_model_decodes() -> None:
    """A model cast to bfloat16 (torch bf16 benchmarks, AMX CPUs) runs encode and decode."""
    model = build_sam("vit_t", image_size=256).to(torch.bfloat16)
    with torch.inference_mode():
        emb = model.encode(torch.randn(1, 3, 256, 256, dtype=torch.bfloat16))
        iou, masks = model.decode(
            emb, torch.tensor([[[40.0, 50.0], [0.0, 0.0]]]), torch.tensor([[1.0, -1.0]]),
            torch.zeros(1, 1, 64, 64, dtype=torch.bfloat16), torch.zeros(1),
        )
    assert iou.dtype == torch.bfloat16 and masks.shape == (1, 4, 64, 64)
    assert torch.isfinite(masks.float()).all()
