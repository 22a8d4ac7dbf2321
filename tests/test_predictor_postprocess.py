"""Low-resolution logits -> image-sized masks, and mask-token selection."""

from __future__ import annotations

import numpy as np
import pytest

from edgesam.predictor import postprocess as pp
from edgesam.predictor.postprocess import postprocess_masks, select_masks, upscale_logits


def _bilinear_reference(x: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """float64 bilinear resize, half-pixel centres, clamped edges (``align_corners=False``)."""

    def taps(n: int, m: int):
        src = np.maximum((np.arange(m) + 0.5) * n / m - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(int), n - 1)
        return i0, np.minimum(i0 + 1, n - 1), np.clip(src - i0, 0.0, 1.0)

    a0, a1, fy = taps(x.shape[-2], out_hw[0])
    b0, b1, fx = taps(x.shape[-1], out_hw[1])
    x = x.astype(np.float64)
    rows = x[..., a0, :] * (1 - fy)[:, None] + x[..., a1, :] * fy[:, None]
    return rows[..., b0] * (1 - fx) + rows[..., b1] * fx


@pytest.mark.parametrize(
    ("image_size", "input_size", "original_size"),
    [
        (256, (154, 256), (300, 500)),  # wide, upscale to the original
        (256, (256, 154), (500, 300)),  # tall
        (256, (256, 256), (100, 100)),  # square, downscale to the original
        (1024, (576, 1024), (1080, 1920)),
        (256, (3, 256), (7, 600)),  # extreme aspect ratio
    ],
)
def test_upscale_matches_exact_bilinear_pipeline(image_size, input_size, original_size) -> None:
    rng = np.random.default_rng(0)
    low = (rng.standard_normal((3, image_size // 4, image_size // 4)) * 5).astype(np.float32)
    ref = _bilinear_reference(low, (image_size, image_size))[:, : input_size[0], : input_size[1]]
    ref = _bilinear_reference(ref, original_size)
    out = upscale_logits(low, image_size=image_size, input_size=input_size, original_size=original_size)
    assert out.shape == (3, *original_size) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=0, atol=2e-5)


def test_upscale_close_to_torch_interpolate() -> None:
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    rng = np.random.default_rng(1)
    low = rng.standard_normal((1, 2, 64, 64)).astype(np.float32)
    t = f.interpolate(torch.from_numpy(low), (256, 256), mode="bilinear", align_corners=False)
    t = f.interpolate(t[..., :154, :256], (300, 500), mode="bilinear", align_corners=False)
    out = upscale_logits(low[0], image_size=256, input_size=(154, 256), original_size=(300, 500))
    # torch computes source positions in float32; differences stay far below mask-relevant levels
    np.testing.assert_allclose(out, t[0].numpy(), rtol=0, atol=1e-4)


def test_postprocess_threshold_and_logits() -> None:
    rng = np.random.default_rng(2)
    low = rng.standard_normal((2, 3, 64, 64)).astype(np.float32)
    kw = dict(image_size=256, input_size=(154, 256), original_size=(300, 500))
    logits = postprocess_masks(low, return_logits=True, **kw)
    masks = postprocess_masks(low, **kw)
    assert logits.shape == masks.shape == (2, 3, 300, 500)
    assert logits.dtype == np.float32 and masks.dtype == bool
    np.testing.assert_array_equal(masks, logits > 0.0)
    np.testing.assert_array_equal(postprocess_masks(low, mask_threshold=0.5, **kw), logits > 0.5)


def test_postprocess_chunking_and_many_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    low = rng.standard_normal((300, 16, 16)).astype(np.float32)  # more channels than one cv2 call takes
    kw = dict(image_size=64, input_size=(40, 64), original_size=(50, 80), return_logits=True)
    full = postprocess_masks(low, **kw)
    monkeypatch.setattr(pp, "_CHUNK_BYTES", 1)  # one mask per step
    np.testing.assert_array_equal(postprocess_masks(low, **kw), full)
    single = upscale_logits(low[5:6], image_size=64, input_size=(40, 64), original_size=(50, 80))
    np.testing.assert_array_equal(full[5:6], single)


def test_select_masks_tokens() -> None:
    iou = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]], np.float32)
    low = np.arange(2 * 4 * 2 * 2, dtype=np.float32).reshape(2, 4, 2, 2)
    scores, masks = select_masks(iou, low, multimask_output=True)
    np.testing.assert_array_equal(scores, iou[:, 1:])
    np.testing.assert_array_equal(masks, low[:, 1:])
    scores, masks = select_masks(iou, low, multimask_output=False)
    np.testing.assert_array_equal(scores, iou[:, :1])
    np.testing.assert_array_equal(masks, low[:, :1])
    with pytest.raises(ValueError):
        select_masks(iou[:, :3], low, multimask_output=True)
