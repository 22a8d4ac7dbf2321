"""Prompt validation and packing into the decoder's point/label/mask inputs."""

from __future__ import annotations

import numpy as np
import pytest

from edgesam.predictor.prompts import pack_prompts
from edgesam.predictor.transforms import apply_coords

ORIG = (300, 500)
S = 256
MASK = (64, 64)


def pack(*args, batched: bool = False, **kwargs):
    return pack_prompts(*args, original_size=ORIG, image_size=S, mask_size=MASK, batched=batched, **kwargs)


def test_points_get_a_pad_point_and_are_mapped_to_the_input_frame() -> None:
    pts = np.array([[100, 50], [400, 250]])
    out = pack(pts, np.array([1, 0]))
    assert out.point_coords.shape == (1, 3, 2) and out.point_coords.dtype == np.float32
    np.testing.assert_allclose(out.point_coords[0, :2], apply_coords(pts, ORIG, S), rtol=1e-6)
    np.testing.assert_array_equal(out.point_coords[0, 2], [0, 0])
    np.testing.assert_array_equal(out.point_labels, [[1, 0, -1]])
    assert out.point_labels.dtype == np.float32
    assert out.mask_input.shape == (1, 1, *MASK) and not out.mask_input.any()
    np.testing.assert_array_equal(out.has_mask_input, [0])


def test_box_becomes_two_labelled_corners_without_pad() -> None:
    out = pack(boxes=np.array([50, 60, 250, 200]))
    np.testing.assert_array_equal(out.point_labels, [[2, 3]])
    np.testing.assert_allclose(
        out.point_coords[0], apply_coords(np.array([[50, 60], [250, 200]]), ORIG, S), rtol=1e-6
    )


def test_points_and_box_keep_points_first() -> None:
    out = pack(np.array([[10, 10]]), np.array([1]), np.array([[0, 0, 20, 20]]))
    np.testing.assert_array_equal(out.point_labels, [[1, 2, 3]])


def test_no_clicks_and_no_box_decode_no_sparse_token() -> None:
    """Like the official prompt encoder: the pad point is added only to clicks without a box."""
    out = pack()
    assert out.point_labels.shape == (1, 0) and out.point_coords.shape == (1, 0, 2)
    assert out.batch_size == 1
    m = np.zeros((1, *MASK))
    assert pack(mask_input=m).point_labels.shape == (1, 0)
    np.testing.assert_array_equal(pack(np.array([[10, 10]]), np.array([1])).point_labels, [[1, -1]])


def test_mask_input_sets_flag_and_accepts_2d() -> None:
    m = np.random.default_rng(0).standard_normal((1, *MASK))
    out = pack(mask_input=m)
    np.testing.assert_array_equal(out.has_mask_input, [1])
    np.testing.assert_allclose(out.mask_input[0], m.astype(np.float32))
    assert pack(mask_input=m[0]).mask_input.shape == (1, 1, *MASK)


def test_batched_packing_and_batch_size_from_any_prompt() -> None:
    boxes = np.array([[0, 0, 10, 10], [5, 5, 50, 60], [1, 2, 3, 4]], dtype=np.float32)
    out = pack(boxes=boxes, batched=True)
    assert out.point_coords.shape == (3, 2, 2) and out.batch_size == 3
    pts = np.zeros((3, 2, 2))
    out = pack(pts, np.ones((3, 2)), boxes, np.zeros((3, 1, *MASK)), batched=True)
    assert out.point_labels.shape == (3, 4) and out.mask_input.shape == (3, 1, *MASK)
    assert pack(mask_input=np.zeros((2, 1, *MASK)), batched=True).batch_size == 2
    assert pack(boxes=np.zeros((0, 4)), batched=True).batch_size == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(point_coords=np.array([[1.0, np.nan]]), point_labels=[1]), "NaN"),
        (dict(point_coords=np.array([[1.0, np.inf]]), point_labels=[1]), "NaN or infinite"),
        (dict(point_coords=np.array([[1, 2]])), "point_labels must be supplied"),
        (dict(point_labels=np.array([1])), "without point_coords"),
        (dict(point_coords=np.array([[1, 2], [3, 4]]), point_labels=[1]), "one label per point"),
        (dict(point_coords=np.array([[1, 2]]), point_labels=[2]), "0 .background. or 1"),
        (dict(point_coords=np.array([[1, 2]]), point_labels=[-1]), "0 .background. or 1"),
        (dict(point_coords=np.array([[1, 2]]), point_labels=[0.5]), "0 .background. or 1"),
        (dict(point_coords=np.array([1, 2]), point_labels=[1]), r"shape \[N, 2\]"),
        (dict(point_coords=np.array([[1, 2, 3]]), point_labels=[1]), r"shape \[N, 2\]"),
        (dict(point_coords=np.array([[1, 2]]), point_labels=[[1]]), r"shape \[N\]"),
        (dict(boxes=np.array([10, 0, 5, 20])), "x1 >= x0"),
        (dict(boxes=np.array([0, 10, 5, 2])), "y1 >= y0"),
        (dict(boxes=np.array([0, 0, 5])), r"shape \[4\]"),
        (dict(boxes=np.array([0, 0, np.nan, 5])), "NaN"),
        (dict(mask_input=np.zeros((1, 32, 32))), "mask_input must have shape"),
        (dict(mask_input=np.zeros((2, *MASK))), "mask_input must have shape"),
        (dict(mask_input=np.full((1, *MASK), np.nan)), "NaN"),
    ],
)
def test_single_prompt_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        pack(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(point_coords=np.zeros((2, 3, 2)), point_labels=np.ones((2, 2))), "one label per point"),
        (dict(point_coords=np.zeros((3, 2)), point_labels=np.ones((3,))), r"\[B, N, 2\]"),
        (dict(boxes=np.zeros((4,))), r"\[B, 4\]"),
        (dict(boxes=np.array([[0, 0, 1, 1], [5, 0, 1, 1]])), "x1 >= x0"),
        (dict(point_coords=np.zeros((2, 1, 2)), point_labels=np.ones((2, 1)), boxes=np.zeros((3, 4))), "disagree"),
        (dict(boxes=np.zeros((2, 4)), mask_input=np.zeros((3, 1, *MASK))), "disagree"),
        (dict(mask_input=np.zeros((2, *MASK))), r"\[B, 1, 64, 64\]"),
    ],
)
def test_batched_prompt_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        pack(batched=True, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(point_coords=np.array([["a", "b"]]), point_labels=[1]),
        dict(point_coords=np.array([[1 + 1j, 2]]), point_labels=[1]),
        dict(point_coords=np.array([[1, 2]]), point_labels=np.array(["1"])),
        dict(boxes=np.array([True, False, True, True])),
        dict(boxes=[object(), 1, 2, 3]),
    ],
)
def test_non_numeric_prompts_are_type_errors(kwargs: dict) -> None:
    with pytest.raises(TypeError):
        pack(**kwargs)


def test_lists_and_integer_arrays_are_accepted() -> None:
    out = pack([[10, 20]], [True], [0, 0, 100, 100])
    np.testing.assert_array_equal(out.point_labels, [[1, 2, 3]])
