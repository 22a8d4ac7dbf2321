"""SamPredictor end to end over a deterministic numpy backend (tests/predictor_doubles.py)."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest
from predictor_doubles import BoxBackend

from edgesam.predictor import SamPredictor
from edgesam.runtimes import Backend

H, W = 300, 500  # non-square original image; S = 256 -> input 154 x 256


def _image(seed: int = 0, shape: tuple[int, int] = (H, W)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (*shape, 3), dtype=np.uint8)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def _box_region(box, shape=(H, W)) -> np.ndarray:
    x0, y0, x1, y1 = box
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    # pixel centres (x + 0.5) inside the box, the convention of the resize chain
    return (xx + 0.5 >= x0) & (xx + 0.5 <= x1) & (yy + 0.5 >= y0) & (yy + 0.5 <= y1)


@pytest.fixture
def predictor() -> SamPredictor:
    p = SamPredictor(BoxBackend(image_size=256))
    p.set_image(_image())
    return p


def test_backend_double_satisfies_protocol() -> None:
    assert isinstance(BoxBackend(), Backend)


def test_state_after_set_image(predictor: SamPredictor) -> None:
    assert predictor.is_image_set
    assert predictor.original_size == (H, W)
    assert predictor.input_size == (154, 256)
    emb = predictor.get_image_embedding()
    assert emb.shape == (1, 8, 16, 16) and emb.dtype == np.float32
    predictor.reset_image()
    assert not predictor.is_image_set and predictor.original_size is None and predictor.input_size is None
    with pytest.raises(RuntimeError, match="set_image"):
        predictor.get_image_embedding()


def test_predict_before_set_image_is_an_error() -> None:
    p = SamPredictor(BoxBackend())
    with pytest.raises(RuntimeError, match=r"An image must be set with \.set_image"):
        p.predict(box=np.array([0, 0, 10, 10]))
    with pytest.raises(RuntimeError, match="set_image"):
        p.predict_batch(boxes=np.array([[0, 0, 10, 10]]))


@pytest.mark.parametrize(
    "box",
    [(60, 40, 300, 220), (0, 0, 120, 90), (350.5, 100.25, 499, 299), (10, 150, 490, 170)],
)
def test_box_lands_on_the_right_pixels(predictor: SamPredictor, box) -> None:
    # token 1 (first multimask output) of the double is the unshifted signed distance to the box
    masks, scores, low = predictor.predict(box=np.array(box))
    assert masks.shape == (3, H, W) and masks.dtype == bool
    assert scores.shape == (3,) and low.shape == (3, 64, 64)
    assert _iou(masks[0], _box_region(box)) > 0.98
    # token 0 is shrunk by one input pixel (~2 original pixels) on every side
    single, _, _ = predictor.predict(box=np.array(box), multimask_output=False)
    assert single.shape == (1, H, W)
    assert not (single[0] & ~masks[0]).any() and single[0].sum() < masks[0].sum()


def test_box_geometry_on_tall_image_and_bgr() -> None:
    p = SamPredictor(BoxBackend(image_size=256))
    p.set_image(_image(1, (500, 300))[:, :, ::-1], image_format="BGR")
    box = (30, 200, 250, 480)
    masks, _, _ = p.predict(box=np.array(box))
    assert _iou(masks[0], _box_region(box, (500, 300))) > 0.98


def test_click_lands_where_clicked(predictor: SamPredictor) -> None:
    masks, _, _ = predictor.predict(np.array([[400, 60]]), np.array([1]), multimask_output=True)
    ys, xs = np.nonzero(masks[0])
    assert masks[0, 60, 400]
    # radius 12 input pixels = 12 * 500 / 256 ~ 23 original pixels
    assert abs(xs.mean() - 400) < 2 and abs(ys.mean() - 60) < 2
    assert 18 < (xs.max() - xs.min()) / 2 < 28


def test_multimask_shapes_and_token_selection(predictor: SamPredictor) -> None:
    box = np.array([60, 40, 300, 220])
    m3, s3, l3 = predictor.predict(box=box)
    m1, s1, l1 = predictor.predict(box=box, multimask_output=False)
    assert m3.shape == (3, H, W) and s3.shape == (3,) and l3.shape == (3, 64, 64)
    assert s3.dtype == np.float32 and l3.dtype == np.float32
    np.testing.assert_allclose(np.diff(s3), 0.1, atol=1e-6)  # tokens 1, 2, 3
    np.testing.assert_allclose(s3[0] - s1[0], 0.1, atol=1e-6)  # token 0 vs token 1
    # token t is shifted by t - 1 input pixels: token 1 equals token 0 plus one
    np.testing.assert_allclose(l3[0], l1[0] + 1.0, atol=1e-5)
    assert m3[0].sum() < m3[1].sum() < m3[2].sum()


def test_logits_versus_bool(predictor: SamPredictor) -> None:
    box = np.array([60, 40, 300, 220])
    masks, _, _ = predictor.predict(box=box)
    logits, _, _ = predictor.predict(box=box, return_logits=True)
    assert logits.dtype == np.float32 and logits.shape == masks.shape
    np.testing.assert_array_equal(masks, logits > 0.0)


def test_mask_input_is_passed_through(predictor: SamPredictor) -> None:
    box = np.array([60, 40, 300, 220])
    _, _, low = predictor.predict(box=box, multimask_output=False)
    _, _, low2 = predictor.predict(box=box, mask_input=low, multimask_output=False)
    np.testing.assert_allclose(low2, 2 * low, atol=1e-4)  # the double adds mask_input to logits


def test_no_prompt_is_allowed(predictor: SamPredictor) -> None:
    masks, scores, low = predictor.predict()
    assert masks.shape == (3, H, W) and not masks.any()


def test_predict_batch_equals_loop_of_predict(predictor: SamPredictor) -> None:
    rng = np.random.default_rng(4)
    n = 5
    x0 = rng.uniform(0, 250, n)
    y0 = rng.uniform(0, 150, n)
    boxes = np.stack([x0, y0, x0 + rng.uniform(20, 240, n), y0 + rng.uniform(20, 140, n)], axis=1)
    points = rng.uniform(0, [W, H], (n, 2, 2))
    labels = rng.integers(0, 2, (n, 2))
    backend = predictor.backend
    for multimask in (True, False):
        for logits in (True, False):
            calls = backend.decode_calls
            bm, bs, bl = predictor.predict_batch(points, labels, boxes, None, multimask, logits)
            assert backend.decode_calls == calls + 1  # one decode for the whole batch
            c = 3 if multimask else 1
            assert bm.shape == (n, c, H, W) and bs.shape == (n, c) and bl.shape == (n, c, 64, 64)
            for i in range(n):
                m, s, lo = predictor.predict(points[i], labels[i], boxes[i], None, multimask, logits)
                np.testing.assert_array_equal(bm[i], m)
                np.testing.assert_array_equal(bs[i], s)
                np.testing.assert_array_equal(bl[i], lo)


def test_predict_batch_boxes_only_and_empty(predictor: SamPredictor) -> None:
    boxes = np.array([[60, 40, 300, 220], [0, 0, 120, 90]], np.float32)
    masks, scores, _ = predictor.predict_batch(boxes=boxes)
    assert masks.shape == (2, 3, H, W)
    for i in range(2):
        assert _iou(masks[i, 0], _box_region(boxes[i])) > 0.98
    masks, scores, low = predictor.predict_batch(boxes=np.zeros((0, 4)))
    assert masks.shape == (0, 3, H, W) and scores.shape == (0, 3) and low.shape == (0, 3, 64, 64)


def test_bad_prompts_raise_through_predict(predictor: SamPredictor) -> None:
    with pytest.raises(ValueError, match="x1 >= x0"):
        predictor.predict(box=np.array([100, 0, 10, 10]))
    with pytest.raises(ValueError, match="point_labels must be supplied"):
        predictor.predict(point_coords=np.array([[1, 2]]))
    with pytest.raises(ValueError, match="mask_input"):
        predictor.predict(box=np.array([0, 0, 10, 10]), mask_input=np.zeros((1, 256, 256)))


def test_set_image_conversions_match_uint8() -> None:
    p = SamPredictor(BoxBackend())
    img = _image(2)
    p.set_image(img)
    ref = p.get_image_embedding()
    p.set_image(img.astype(np.float32) / 255.0)
    np.testing.assert_array_equal(p.get_image_embedding(), ref)
    p.set_image(np.dstack([img, np.full((H, W), 255, np.uint8)]))
    np.testing.assert_array_equal(p.get_image_embedding(), ref)
    p.set_image(img[:, :, ::-1].copy(), "BGR")
    np.testing.assert_array_equal(p.get_image_embedding(), ref)
    with pytest.raises(ValueError, match="image_format"):
        p.set_image(img, "HSV")
    with pytest.raises(ValueError, match="empty"):
        p.set_image(np.zeros((0, 10, 3), np.uint8))
    assert p.original_size == (H, W)  # a refused image leaves the previous one in place


def test_constructor_rejects_non_backends() -> None:
    with pytest.raises(TypeError, match="Backend"):
        SamPredictor(object())


def test_predictor_path_imports_no_torch() -> None:
    import subprocess

    code = (
        "import sys, numpy as np\n"
        "sys.path.insert(0, 'tests')\n"
        "from predictor_doubles import BoxBackend\n"
        "from edgesam.predictor import SamPredictor\n"
        "import edgesam.runtimes\n"
        "p = SamPredictor(BoxBackend()); p.set_image(np.zeros((20, 30, 3), np.uint8))\n"
        "p.predict(box=np.array([0, 0, 10, 10]))\n"
        "edgesam.runtimes.available_backends()\n"
        "bad = [m for m in ('torch', 'PIL', 'torchvision') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=_repo_root())


def _repo_root() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parents[1])


def test_threads_sharing_one_backend_match_serial() -> None:
    backend = BoxBackend()
    images = [_image(10 + i) for i in range(4)]
    boxes = [np.array([20 + 10 * i, 30, 300 - 5 * i, 250]) for i in range(4)]

    def run(i: int):
        p = SamPredictor(backend)
        out = []
        for _ in range(3):
            p.set_image(images[i])
            out.append(p.predict(box=boxes[i]))
        return out

    serial = [run(i) for i in range(4)]
    results: dict[int, list] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, run(i))) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        for got, want in zip(results[i], serial[i]):
            for a, b in zip(got, want):
                np.testing.assert_array_equal(a, b)
