"""What ``set_image`` accepts, how it converts it, and what it refuses."""

from __future__ import annotations

import numpy as np
import pytest

from edgesam.predictor.images import to_rgb_uint8


@pytest.fixture
def rgb() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (12, 17, 3), dtype=np.uint8)


def test_rgb_uint8_passes_through(rgb: np.ndarray) -> None:
    np.testing.assert_array_equal(to_rgb_uint8(rgb), rgb)


def test_bgr_is_flipped(rgb: np.ndarray) -> None:
    np.testing.assert_array_equal(to_rgb_uint8(rgb[:, :, ::-1], "BGR"), rgb)


def test_alpha_is_dropped(rgb: np.ndarray) -> None:
    alpha = np.full((*rgb.shape[:2], 1), 7, np.uint8)
    np.testing.assert_array_equal(to_rgb_uint8(np.concatenate([rgb, alpha], axis=2)), rgb)
    bgra = np.concatenate([rgb[:, :, ::-1], alpha], axis=2)
    np.testing.assert_array_equal(to_rgb_uint8(bgra, "BGR"), rgb)


@pytest.mark.parametrize("shape", [(12, 17), (12, 17, 1)])
def test_grayscale_is_replicated(shape: tuple[int, ...]) -> None:
    gray = np.arange(12 * 17, dtype=np.uint8).reshape(shape)
    out = to_rgb_uint8(gray, "BGR")
    assert out.shape == (12, 17, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray.reshape(12, 17))


def test_float_unit_range_is_scaled_and_rounded(rgb: np.ndarray) -> None:
    out = to_rgb_uint8(rgb.astype(np.float32) / 255.0)
    np.testing.assert_array_equal(out, rgb)
    assert to_rgb_uint8(np.full((2, 2, 3), 0.5))[0, 0, 0] == 128  # 127.5 -> nearest even 128


def test_integer_images_in_range_are_cast(rgb: np.ndarray) -> None:
    np.testing.assert_array_equal(to_rgb_uint8(rgb.astype(np.int64)), rgb)
    np.testing.assert_array_equal(to_rgb_uint8(rgb.tolist()), rgb)


@pytest.mark.parametrize(
    ("image", "error", "match"),
    [
        (np.zeros((0, 5, 3), np.uint8), ValueError, "empty"),
        (np.zeros((5, 0), np.uint8), ValueError, "empty"),
        (np.zeros((5,), np.uint8), ValueError, "must be"),
        (np.zeros((2, 5, 5, 3), np.uint8), ValueError, "must be"),
        (np.zeros((3, 5, 5), np.uint8), ValueError, "channels"),
        (np.zeros((5, 5, 2), np.uint8), ValueError, "channels"),
        (np.full((5, 5, 3), np.nan, np.float32), ValueError, "NaN"),
        (np.full((5, 5, 3), np.inf), ValueError, "NaN"),
        (np.full((5, 5, 3), 200.0, np.float32), ValueError, r"\[0, 1\]"),
        (np.full((5, 5, 3), -0.1), ValueError, r"\[0, 1\]"),
        (np.full((5, 5, 3), 1000, np.uint16), ValueError, "0..255"),
        (np.full((5, 5, 3), -1, np.int32), ValueError, "0..255"),
        (np.zeros((5, 5, 3), bool), TypeError, "dtype"),
        (np.zeros((5, 5, 3), np.complex64), TypeError, "dtype"),
        (np.zeros((5, 5, 3), object), TypeError, "dtype"),
        (np.full((5, 5, 3), "a"), TypeError, "dtype"),
    ],
)
def test_refused_images(image: np.ndarray, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        to_rgb_uint8(image)


@pytest.mark.parametrize("fmt", ["rgb", "RGBA", "", None])
def test_unknown_image_format(rgb: np.ndarray, fmt) -> None:
    with pytest.raises(ValueError, match="image_format"):
        to_rgb_uint8(rgb, fmt)
