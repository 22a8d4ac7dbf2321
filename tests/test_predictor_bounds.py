"""Prompts outside the image: clicks are refused, boxes are clipped (Python API and CLI)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from predictor_doubles import BoxBackend

from edgesam.cli import join_negative_values, main
from edgesam.predictor import SamPredictor


@pytest.fixture
def predictor() -> SamPredictor:
    p = SamPredictor(BoxBackend())
    p.set_image(np.full((120, 200, 3), 90, np.uint8))  # H=120, W=200
    return p


@pytest.mark.parametrize("point", [(900, 90), (-5, 20), (50, 120.5), (200.01, 0)])
def test_points_outside_the_image_name_the_point_and_the_size(predictor, point) -> None:
    with pytest.raises(ValueError) as err:
        predictor.predict(point_coords=np.array([point]), point_labels=np.array([1]))
    msg = str(err.value)
    assert f"({point[0]:g}, {point[1]:g})" in msg and "200x120" in msg and "outside" in msg
    with pytest.raises(ValueError, match="outside the 200x120"):
        predictor.predict_batch(point_coords=np.array([[[10, 10]], [list(point)]]), point_labels=np.ones((2, 1)))


def test_points_on_the_border_are_inside(predictor) -> None:
    corners = np.array([[0, 0], [200, 120], [0, 120], [200, 0]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        masks, _, _ = predictor.predict_batch(point_coords=corners[:, None], point_labels=np.ones((4, 1)))
    assert masks.shape == (4, 3, 120, 200)


def test_boxes_partly_outside_are_clipped_with_a_warning(predictor) -> None:
    with pytest.warns(UserWarning, match=r"clipped.*\[-20\.0, 10\.0, 150\.0, 300\.0\] -> \[0\.0, 10\.0, 150\.0, 120\.0\]"):
        clipped = predictor.predict(box=np.array([-20, 10, 150, 300]), multimask_output=False)
    inside = predictor.predict(box=np.array([0, 10, 150, 120]), multimask_output=False)
    for a, b in zip(clipped, inside):
        np.testing.assert_array_equal(a, b)
    with pytest.warns(UserWarning, match=r"^1 box reaches outside the 200x120 \(width x height\) image and was clipped"):
        predictor.predict_batch(boxes=np.array([[0, 0, 50, 50], [10, 10, 250, 100]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        predictor.predict(box=np.array([0, 0, 200, 120]))  # the whole image: no warning


def test_a_box_entirely_outside_is_an_error(predictor) -> None:
    with pytest.raises(ValueError, match="entirely outside the 200x120"):
        predictor.predict(box=np.array([300, 10, 400, 50]))


def test_negative_numbers_are_joined_to_their_option() -> None:
    assert join_negative_values(["segment", "a.png", "--point", "-5,20", "--box", "-1.5,-2,3e2,4"]) == [
        "segment", "a.png", "--point=-5,20", "--box=-1.5,-2,3e2,4"]
    assert join_negative_values(["bench", "--quick", "-q"]) == ["bench", "--quick", "-q"]
    assert join_negative_values(["--threads", "-1"]) == ["--threads", "-1"]  # argparse handles plain numbers


def test_cli_rejects_points_outside_with_one_line(tmp_path: Path, capsys) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("torch")
    from bundle_fixtures import tiny_model

    from edgesam.export import export_bundle
    from edgesam.io import write_image

    bundle = export_bundle(tiny_model(), tmp_path / "b")
    image = tmp_path / "img.png"
    write_image(image, np.full((64, 96, 3), 120, np.uint8))
    for point in ("-5,20", "900,900"):
        code = main(["segment", str(bundle), str(image), "--point", point, "-o", str(tmp_path / "m.png")])
        err = capsys.readouterr().err
        assert code == 2, err
        x, y = point.split(",")
        assert f"point ({x}, {y}) is outside the 96x64" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "m.png").exists()
    code = main(["segment", str(bundle), str(image), "--point", "0,64", "-o", str(tmp_path / "m.png")])
    assert code == 0 and (tmp_path / "m.png").exists()
