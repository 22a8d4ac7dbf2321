"""Contract tests for the lightweight encoders: TinyViT-5M (``vit_t``) and RepViT-M1 (``edge_sam``)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from layouts import load_layout
from torch import nn

from edgesam.models.encoders.rep_vit import RepVGGDW, build_rep_vit_m1, fuse_rep_vit
from edgesam.models.encoders.tiny_vit import build_tiny_vit_5m
from edgesam.models.layers import Conv2dBN

PREFIX = "image_encoder."
# Classifier entries of the MobileSAM checkpoint that the encoder does not use.
UNUSED_PREFIXES = ("head.", "norm_head.")

BUILDERS: dict[str, Callable[..., nn.Module]] = {"vit_t": build_tiny_vit_5m, "edge_sam": build_rep_vit_m1}


def _encoder_layout(arch: str) -> dict[str, tuple[list[int], str]]:
    raw = load_layout(arch)
    return {
        key[len(PREFIX) :]: (shape, dtype)
        for key, (shape, dtype) in raw.items()
        if key.startswith(PREFIX) and not key[len(PREFIX) :].startswith(UNUSED_PREFIXES)
    }


def _randomize_bn(model: nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial affine parameters and running statistics."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(0.5 + 0.5 * torch.rand(n, generator=gen))
                m.bias.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(n, generator=gen))


@pytest.mark.parametrize("arch", sorted(BUILDERS))
@pytest.mark.parametrize("img_size", [256, 1024])
def test_state_dict_matches_checkpoint_layout(arch: str, img_size: int) -> None:
    layout = _encoder_layout(arch)
    model = BUILDERS[arch](img_size=img_size)
    ours = {k: (list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in model.state_dict().items()}
    assert sorted(ours) == sorted(layout), {
        "missing": sorted(set(layout) - set(ours)),
        "unexpected": sorted(set(ours) - set(layout)),
    }
    mismatched = {k: (ours[k], layout[k]) for k in layout if tuple(ours[k]) != tuple(layout[k])}
    assert not mismatched


@pytest.mark.parametrize("arch", sorted(BUILDERS))
def test_strict_load_of_layout_shaped_checkpoint(arch: str) -> None:
    layout = _encoder_layout(arch)
    gen = torch.Generator().manual_seed(1)
    state = {
        k: torch.randn(shape, generator=gen) if dtype == "float32" else torch.zeros(shape, dtype=getattr(torch, dtype))
        for k, (shape, dtype) in layout.items()
    }
    model = BUILDERS[arch](img_size=256)
    model.load_state_dict(state, strict=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


@pytest.fixture(scope="module")
def encoder_runs() -> dict[str, tuple[nn.Module, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per arch: eval-mode model at 256 px (random BN statistics), a batch of 2 inputs,
    the batched output and the output of the second row alone."""
    runs = {}
    for arch, build in BUILDERS.items():
        torch.manual_seed(0)
        model = build(img_size=256)
        _randomize_bn(model)
        model.eval()
        x = torch.randn(2, 3, 256, 256)
        with torch.no_grad():
            runs[arch] = (model, x, model(x), model(x[1:]))
    return runs


@pytest.mark.parametrize("arch", sorted(BUILDERS))
def test_output_grid_at_256(arch: str, encoder_runs: dict) -> None:
    _, _, out, _ = encoder_runs[arch]
    assert out.shape == (2, 256, 16, 16)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("arch", sorted(BUILDERS))
def test_batch_rows_are_independent(arch: str, encoder_runs: dict) -> None:
    _, _, batched, second = encoder_runs[arch]
    torch.testing.assert_close(batched[1:], second, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(batched[0], batched[1])


@pytest.mark.parametrize("arch", sorted(BUILDERS))
def test_output_grid_off_power_of_two(arch: str) -> None:
    # 320 px: 20x20 output grid; TinyViT pads its 7- and 14-token windows at every attention stage.
    model = BUILDERS[arch](img_size=320).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 320, 320))
    assert out.shape == (1, 256, 20, 20)


def test_tiny_vit_full_resolution_forward() -> None:
    model = build_tiny_vit_5m(img_size=1024).eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, 1024, 1024))
    assert out.shape == (1, 256, 64, 64)


def test_tiny_vit_uses_current_attention_biases_after_eval(encoder_runs: dict) -> None:
    # Loading weights after .eval() must take effect: biases may not be cached at mode switch.
    model, x, before, _ = encoder_runs["vit_t"]
    model = copy.deepcopy(model)
    with torch.no_grad():
        state = model.state_dict()
        for k in state:
            if k.endswith("attention_biases"):
                state[k] = torch.randn_like(state[k])
        model.load_state_dict(state)
        after = model(x)
    assert not torch.allclose(before, after, atol=1e-3)


def test_fused_rep_vit_matches_unfused(encoder_runs: dict) -> None:
    model, x, ref, _ = encoder_runs["edge_sam"]
    fused = fuse_rep_vit(model)

    assert not any(isinstance(m, (nn.BatchNorm2d, RepVGGDW, Conv2dBN)) for m in fused.modules())
    assert any(isinstance(m, RepVGGDW) for m in model.modules()), "the original must be left unfused"
    dw = fused.features[1].token_mixer[0]
    assert isinstance(dw, nn.Conv2d) and dw.kernel_size == (3, 3) and dw.groups == dw.in_channels
    assert not fused.training
    assert type(model.fuse_for_deployment()) is type(model)

    with torch.no_grad():
        out = fused(x)
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))


def test_repvggdw_fuse_is_exact_on_its_own() -> None:
    torch.manual_seed(0)
    block = RepVGGDW(16)
    _randomize_bn(block)
    with torch.no_grad():
        block.conv.c.weight.normal_()
        block.conv1.c.weight.normal_()
    block.eval()
    x = torch.randn(2, 16, 9, 7)
    with torch.no_grad():
        torch.testing.assert_close(block.fuse()(x), block(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("builder", "bad_size"), [(build_tiny_vit_5m, 250), (build_rep_vit_m1, 240), (build_rep_vit_m1, 0)]
)
def test_rejects_unsupported_img_size(builder: Callable[..., nn.Module], bad_size: int) -> None:
    with pytest.raises(ValueError, match="img_size"):
        builder(img_size=bad_size)
