"""Quantization recipes, calibration images and prompts (no quantizer needed, fast)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgesam.predictor import SamPredictor
from edgesam.quantization.calibration import CalibrationError, CalibrationSet, find_images
from edgesam.prompt_geometry import sample_prompts
from edgesam.quantization.recipes import RECIPES, QuantRecipe, default_recipe, get_recipe
from edgesam.quantization.settings import AccuracyConfig, CalibrationConfig, NncfConfig, OrtGraphConfig, QuantizationConfig
from edgesam.quantization.samples import sample_images
from edgesam.scenes import SceneConfig, generate_scene

from predictor_doubles import BoxBackend

PRE = dict(image_size=256, pixel_mean=(123.675, 116.28, 103.53), pixel_std=(58.395, 57.12, 57.375))


class RecordingBackend(BoxBackend):
    """The predictor-test double, remembering the encoder input it was given."""

    def encode(self, image: np.ndarray) -> np.ndarray:
        self.seen = image.copy()
        return super().encode(image)


# ---------------------------------------------------------------- recipes
def test_named_recipes_round_trip_through_metadata() -> None:
    for recipe in RECIPES.values():
        assert QuantRecipe.from_dict(recipe.to_dict()) == recipe
    assert default_recipe("openvino").backend == "openvino"
    assert get_recipe("ort-int8").quantization.activation_type == "uint8"


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"backend": "tflite"}, "backend must be one of"),
        ({"activation_type": "int4"}, "activation_type"),
        ({"calibration_method": "mse"}, "calibration method must be one of"),
        ({"calibration_images": 0}, "calibration images must be >= 1"),
        ({"heldout_images": 0}, "accuracy heldout_images"),
        ({"preset": "fast"}, "invalid nncf settings"),
    ],
)
def test_invalid_recipes_are_refused(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_recipe("ort-int8").replace(**changes)


def test_tensorrt_recipe_must_be_symmetric() -> None:
    with pytest.raises(ValueError, match="symmetric"):
        get_recipe("trt-int8").replace(activation_symmetric=False)
    with pytest.raises(ValueError, match="unknown quantization recipe"):
        get_recipe("fastest")
    with pytest.raises(ValueError, match="unknown quantization recipe field"):
        QuantRecipe.from_dict({**get_recipe("ort-int8").to_dict(), "bits": 4})
    with pytest.raises(ValueError, match="unknown quantization recipe field.*'calibration'"):
        QuantRecipe.from_dict({**get_recipe("ort-int8").to_dict(), "calibration": {"method": "minmax", "bins": 3}})


def test_recipe_sections_split_the_concerns() -> None:
    recipe = get_recipe("ort-int8-entropy")
    assert isinstance(recipe.quantization, QuantizationConfig) and isinstance(recipe.calibration, CalibrationConfig)
    assert isinstance(recipe.accuracy, AccuracyConfig) and isinstance(recipe.ort, OrtGraphConfig)
    assert isinstance(recipe.nncf, NncfConfig)
    assert recipe.calibration.method == "entropy" and recipe.ort.lower_matmuls and not recipe.quantization.quantize_decoder
    assert get_recipe("ov-int8").nncf.smooth_quant_alpha == 0.5 and get_recipe("ov-nncf-default").nncf.preset == "default"
    data = recipe.to_dict()
    assert set(data) == {"name", "backend", "description", "quantization", "calibration", "accuracy", "ort", "nncf", "extra"}
    assert data["calibration"]["method"] == "entropy" and data["quantization"]["op_types"] == ["Conv", "MatMul"]
    # flat setting names reach their section; prompts_per_image feeds calibration and the gate
    fast = recipe.replace(prompts_per_image=3, heldout_images=2, exclude_patterns=("a",))
    assert (fast.calibration.prompts_per_image, fast.accuracy.prompts_per_image, fast.accuracy.heldout_images) == (3, 3, 2)
    assert fast.quantization.exclude_patterns == ("a",) and fast.calibration.method == "entropy"
    assert recipe.with_excluded(["n1"]).with_excluded(["n1", "n2"]).quantization.exclude_nodes == ("n1", "n2")


def test_recipes_in_older_bundles_are_still_read() -> None:
    """Bundles quantized before the sections existed store the recipe as one flat object."""
    flat = {
        "name": "ov-int8", "backend": "openvino", "description": "old", "per_channel": True, "activation_type": "uint8",
        "weight_type": "int8", "activation_symmetric": False, "weight_symmetric": True, "calibration_method": "minmax",
        "percentile": 99.999, "op_types": ["Conv", "MatMul"], "quantize_activation_matmuls": False,
        "quantize_outputs_of": ["Conv"], "quantize_bias": True, "exclude_nodes": ["x"], "exclude_patterns": [],
        "fuse_gelu": True, "lower_matmuls": True, "model_type": "transformer", "smooth_quant_alpha": 0.5,
        "fast_bias_correction": True, "preset": "performance", "quantize_decoder": False, "calibration_images": 12,
        "heldout_images": 3, "prompts_per_image": 5, "extra": {},
    }  # fmt: skip
    recipe = QuantRecipe.from_dict(flat)
    assert recipe == get_recipe("ov-int8").replace(description="old", exclude_nodes=("x",), calibration_images=12,
                                                   heldout_images=3, prompts_per_image=5)  # fmt: skip
    assert QuantRecipe.from_dict(recipe.to_dict()) == recipe


# ---------------------------------------------------------------- calibration folders
def test_missing_empty_and_unreadable_folders_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match="does not exist"):
        CalibrationSet.from_folder(tmp_path / "nope", **PRE)
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(CalibrationError, match="holds no image files"):
        CalibrationSet.from_folder(tmp_path, **PRE)
    with pytest.raises(CalibrationError, match="not a folder"):
        find_images(tmp_path / "notes.txt")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(CalibrationError, match="none of the 2 calibration image"):
        CalibrationSet.from_folder(tmp_path, **PRE)


def test_unreadable_files_are_skipped_with_a_warning(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.full((40, 60, 3), 90, np.uint8))
    (tmp_path / "b.jpg").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        calib = CalibrationSet.from_folder(tmp_path, **PRE)
    assert [im.name for im in calib.images] == ["a.png"]


def test_odd_sizes_and_modes_are_preprocessed_like_the_predictor(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / "1_gray.png"), rng.integers(0, 255, (31, 77), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / "2_rgba.png"), rng.integers(0, 255, (300, 120, 4), dtype=np.uint8))
    cv2.imwrite(str(tmp_path / "3_deep.png"), rng.integers(0, 65535, (50, 50, 3), dtype=np.uint16))
    cv2.imwrite(str(tmp_path / "4_tiny.JPG"), rng.integers(0, 255, (3, 5, 3), dtype=np.uint8))
    calib = CalibrationSet.from_folder(tmp_path, **PRE)
    assert len(calib) == 4
    backend = RecordingBackend(image_size=256)
    predictor = SamPredictor(backend)
    feeds = list(calib)
    for i, item in enumerate(calib.images):
        assert item.image.dtype == np.uint8 and item.image.shape[2] == 3
        predictor.set_image(item.image)
        assert feeds[i]["image"].shape == (1, 3, 256, 256) and feeds[i]["image"].dtype == np.float32
        np.testing.assert_array_equal(feeds[i]["image"], backend.seen)


def test_limit_and_subsets(tmp_path: Path) -> None:
    for i in range(5):
        cv2.imwrite(str(tmp_path / f"{i}.png"), np.full((20, 30, 3), i * 40, np.uint8))
    calib = CalibrationSet.from_folder(tmp_path, limit=3, **PRE)
    assert [im.name for im in calib.images] == ["0.png", "1.png", "2.png"]
    assert len(calib.subset(1)) == 2
    with pytest.raises(CalibrationError):
        calib.subset(3)


# ---------------------------------------------------------------- samples and prompts
def test_sample_images_are_deterministic_scenes() -> None:
    a, b = sample_images(2, long_side=96, seed=3), sample_images(2, long_side=96, seed=3)
    assert [im.shape for im in a] == [(72, 96, 3), (96, 72, 3)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert a[0].std() > 10  # not a flat image
    assert a[0].dtype == np.uint8 and not np.array_equal(a[0][:72, :72], sample_images(1, long_side=96, seed=4)[0][:72, :72])
    assert np.array_equal(a[0], generate_scene(3, SceneConfig(height=72, width=96, min_objects=3, max_objects=8)).image)
    with pytest.raises(ValueError):
        sample_images(0)


def test_prompts_cover_every_kind_inside_the_image() -> None:
    batches = sample_prompts((120, 200), 8, seed=0)
    assert {b.kind for b in batches} == {"point", "points", "box", "box+point"}
    assert sum(b.size for b in batches) == 8
    for b in batches:
        if b.boxes is not None:
            assert np.all(b.boxes[:, 2] > b.boxes[:, 0]) and np.all(b.boxes[:, 3] > b.boxes[:, 1])
            assert b.boxes[:, [0, 2]].max() <= 199 and b.boxes[:, [1, 3]].max() <= 119 and b.boxes.min() >= 0
        if b.point_coords is not None:
            assert b.point_coords[..., 0].max() < 200 and b.point_coords[..., 1].max() < 120
            assert b.point_labels.shape == b.point_coords.shape[:2]
    assert [b.kind for b in sample_prompts((50, 50), 1)] == ["point"]


def test_decoder_feeds_follow_the_predictor_packing() -> None:
    calib = CalibrationSet.from_samples(2, **PRE)
    backend = BoxBackend(image_size=256)
    feeds = calib.decoder_feeds(backend.encode, prompts_per_image=4)
    assert len(feeds) == 8  # 2 images x 4 kinds
    for feed in feeds:
        b, n, _ = feed["point_coords"].shape
        assert feed["image_embeddings"].shape == (1, 8, 16, 16)
        assert feed["point_labels"].shape == (b, n) and feed["mask_input"].shape == (b, 1, 64, 64)
        labels = set(np.unique(feed["point_labels"]).tolist())
        assert labels <= {-1.0, 0.0, 1.0, 2.0, 3.0}
        assert (2.0 in labels) != (-1.0 in labels)  # a box, or the padding point, never both
        assert feed["point_coords"].max() <= 256
