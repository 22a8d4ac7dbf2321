"""Pre-processing: Pillow-exact resize, longest-side sizes, coordinates, normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from edgesam.predictor.transforms import (
    apply_boxes,
    apply_coords,
    get_preprocess_shape,
    normalize_and_pad,
    resize_longest_side,
    resize_uint8,
)

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

PIL_MAJOR = int(PIL.__version__.split(".")[0])


def _pil_resize(img: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((size_hw[1], size_hw[0]), Image.BILINEAR))


def _ours(img: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    # Pillow < 13 always runs the horizontal pass first; 13 picks the order by the sizes.
    return resize_uint8(img, size_hw, vertical_first=None if PIL_MAJOR >= 13 else False)


def _structured(h: int, w: int, seed: int) -> np.ndarray:
    """Noise plus edges and gradients: exercises rounding and clipping of every tap."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = rng.integers(0, 256, (h, w, 3)).astype(np.int64)
    img[..., 1] = (xx * 255) // max(w - 1, 1)
    img[(yy // 7 + xx // 5) % 2 == 0, 2] = 255
    img[: h // 3, : w // 3] = 0
    return img.astype(np.uint8)


@pytest.mark.parametrize(
    ("src", "long_side"),
    [
        ((1080, 1920), 1024),  # typical camera frame, downscale
        ((300, 500), 256),
        ((257, 1023), 1024),  # odd sizes, near-identity width
        ((1500, 999), 1024),
        ((513, 77), 256),  # tall: height shrinks much more than width
        ((97, 1203), 333),  # wide, odd target
        ((17, 33), 1024),  # strong upscale
        ((1, 5), 256),  # degenerate thin image
        ((640, 480), 1024),  # upscale both axes
    ],
)
def test_resize_longest_side_matches_pillow(src: tuple[int, int], long_side: int) -> None:
    img = _structured(*src, seed=sum(src))
    size = get_preprocess_shape(*src, long_side)
    ref = _pil_resize(img, size).astype(np.int16)
    out = _ours(img, size)
    assert out.shape == ref.shape and out.dtype == np.uint8
    diff = np.abs(out.astype(np.int16) - ref)
    assert diff.max() <= 1
    assert diff.mean() < 1e-3  # bit exact in practice


def test_resize_random_sizes_and_channel_counts_match_pillow() -> None:
    rng = np.random.default_rng(3)
    for _ in range(60):
        h, w, oh, ow = (int(v) for v in rng.integers(1, 160, 4))
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        gray = img[:, :, 0].copy()
        assert np.abs(_ours(img, (oh, ow)).astype(int) - _pil_resize(img, (oh, ow))).max() <= 1
        assert np.abs(_ours(gray, (oh, ow)).astype(int) - _pil_resize(gray, (oh, ow))).max() <= 1


def test_pass_orders_differ_by_at_most_one_level() -> None:
    img = _structured(400, 60, seed=1)
    a = resize_uint8(img, (100, 40), vertical_first=True).astype(int)
    b = resize_uint8(img, (100, 40), vertical_first=False).astype(int)
    assert np.abs(a - b).max() <= 1
    assert (a != b).any()  # the order is observable, so matching Pillow's choice matters


def test_resize_same_size_is_a_copy() -> None:
    img = _structured(20, 30, seed=0)
    out = resize_uint8(img, (20, 30))
    assert np.array_equal(out, img) and not np.shares_memory(out, img)


def test_resize_rejects_bad_input() -> None:
    with pytest.raises(TypeError):
        resize_uint8(np.zeros((4, 4, 3), np.float32), (2, 2))
    with pytest.raises(ValueError):
        resize_uint8(np.zeros((4, 4, 3, 1), np.uint8), (2, 2))
    with pytest.raises(ValueError):
        resize_uint8(np.zeros((4, 4, 3), np.uint8), (0, 2))
    with pytest.raises(ValueError):
        resize_uint8(np.zeros((0, 4, 3), np.uint8), (2, 2))


def test_preprocess_shape_rounds_half_up() -> None:
    assert get_preprocess_shape(1080, 1920, 1024) == (576, 1024)
    assert get_preprocess_shape(300, 500, 256) == (154, 256)  # 153.6 -> 154
    assert get_preprocess_shape(500, 300, 1024) == (1024, 614)  # 614.4 -> 614
    assert get_preprocess_shape(2, 1, 3) == (3, 2)  # 1.5 -> 2
    with pytest.raises(ValueError):
        get_preprocess_shape(0, 10, 1024)


def test_resize_longest_side_shape() -> None:
    img = _structured(300, 500, seed=2)
    assert resize_longest_side(img, 256).shape == (154, 256, 3)


def test_coordinates_round_trip_through_resized_frame() -> None:
    original = (300, 500)
    h, w = get_preprocess_shape(*original, 256)
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 500, (7, 2))
    mapped = apply_coords(pts, original, 256)
    back = mapped / np.array([w / original[1], h / original[0]])
    np.testing.assert_allclose(back, pts, rtol=0, atol=1e-9)
    # the image corners land on the corners of the resized (unpadded) region
    np.testing.assert_allclose(apply_coords(np.array([[500.0, 300.0]]), original, 256), [[w, h]])
    assert not np.shares_memory(mapped, pts)


def test_boxes_map_like_their_corners() -> None:
    boxes = np.array([[10, 20, 110, 220], [0, 0, 500, 300]], dtype=np.int64)
    mapped = apply_boxes(boxes, (300, 500), 256)
    corners = apply_coords(boxes.reshape(-1, 2, 2), (300, 500), 256).reshape(-1, 4)
    np.testing.assert_array_equal(mapped, corners)
    assert mapped.dtype == np.float64


def test_normalize_and_pad_layout_and_values() -> None:
    img = _structured(154, 256, seed=4)
    mean = np.array([123.675, 116.28, 103.53], np.float32)
    std = np.array([58.395, 57.12, 57.375], np.float32)
    out = normalize_and_pad(img, mean, std, 256)
    assert out.shape == (1, 3, 256, 256) and out.dtype == np.float32
    expected = (img.astype(np.float32) - mean) / std
    np.testing.assert_array_equal(out[0, :, :154, :256], expected.transpose(2, 0, 1))
    assert not out[0, :, 154:, :].any()
    with pytest.raises(ValueError):
        normalize_and_pad(_structured(300, 10, seed=0), mean, std, 256)
