"""The real torch model through TorchBackend + SamPredictor, and against direct model calls."""

from __future__ import annotations

import threading

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional
Image = pytest.importorskip("PIL.Image")

from edgesam.models.registry import build_sam  # noqa: E402
from edgesam.predictor import SamPredictor  # noqa: E402
from edgesam.runtimes import Backend, BackendUnavailableError, import_runtime  # noqa: E402
from edgesam.runtimes.torch_backend import TorchBackend  # noqa: E402
from scene_images import make_scene_image  # noqa: E402

S = 256


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_sam("vit_t", image_size=S).eval()


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """240 x 320 non-square scene (downscaled to 192 x 256)."""
    return make_scene_image()


@pytest.fixture(scope="module")
def predictor(model, image) -> SamPredictor:
    p = SamPredictor(model)
    p.set_image(image)
    return p


def test_torch_model_is_wrapped_in_torch_backend(predictor: SamPredictor) -> None:
    backend = predictor.backend
    assert isinstance(backend, TorchBackend) and isinstance(backend, Backend)
    assert backend.name == "torch" and backend.image_size == S and backend.mask_threshold == 0.0
    np.testing.assert_allclose(backend.pixel_mean, [123.675, 116.28, 103.53], rtol=1e-6)
    np.testing.assert_allclose(backend.pixel_std, [58.395, 57.12, 57.375], rtol=1e-6)
    assert backend.pixel_mean.dtype == np.float32 and backend.pixel_mean.shape == (3,)


def test_end_to_end_shapes(predictor: SamPredictor) -> None:
    assert predictor.original_size == (240, 320) and predictor.input_size == (192, 256)
    emb = predictor.get_image_embedding()
    assert emb.shape == (1, 256, 16, 16) and emb.dtype == np.float32
    masks, scores, low = predictor.predict(np.array([[90, 120]]), np.array([1]))
    assert masks.shape == (3, 240, 320) and masks.dtype == bool
    assert scores.shape == (3,) and scores.dtype == np.float32 and np.isfinite(scores).all()
    assert low.shape == (3, 64, 64) and low.dtype == np.float32
    masks, scores, low = predictor.predict(box=np.array([190, 60, 290, 200]), multimask_output=False)
    assert masks.shape == (1, 240, 320) and scores.shape == (1,)
    logits, _, low2 = predictor.predict(
        box=np.array([190, 60, 290, 200]), mask_input=low, multimask_output=False, return_logits=True
    )
    assert logits.dtype == np.float32 and not np.array_equal(low2, low)


def _reference(model, image: np.ndarray, coords: np.ndarray, labels: np.ndarray):
    """The official pipeline written directly with torch ops and PIL, calling the model."""
    h0, w0 = image.shape[:2]
    scale = S / max(h0, w0)
    nh, nw = int(h0 * scale + 0.5), int(w0 * scale + 0.5)
    resized = np.array(Image.fromarray(image).resize((nw, nh), Image.BILINEAR))
    x = torch.as_tensor(resized).permute(2, 0, 1)[None].float()
    x = (x - model.pixel_mean) / model.pixel_std
    x = F.pad(x, (0, S - nw, 0, S - nh))
    pts = torch.as_tensor(coords, dtype=torch.float64).clone()
    pts[..., 0] *= nw / w0
    pts[..., 1] *= nh / h0
    with torch.inference_mode():
        emb = model.encode(x)
        iou, low = model.decode(
            emb,
            pts.float()[None],
            torch.as_tensor(labels, dtype=torch.float32)[None],
            torch.zeros(1, 1, 64, 64),
            torch.zeros(1),
        )
        up = F.interpolate(low, (S, S), mode="bilinear", align_corners=False)[..., :nh, :nw]
        up = F.interpolate(up, (h0, w0), mode="bilinear", align_corners=False)
    return emb.numpy(), iou[0].numpy(), low[0].numpy(), up[0].numpy()


def test_predictor_matches_direct_model_calls(model, image, predictor: SamPredictor) -> None:
    clicks = np.array([[90.0, 120.0], [250.0, 100.0]])
    labels = np.array([1, 0])
    # the predictor appends the (0, 0, -1) pad point because there is no box
    coords = np.concatenate([clicks, [[0.0, 0.0]]])
    emb, iou, low, up = _reference(model, image, coords, np.array([1, 0, -1]))
    # same resize, normalisation and padding: the encoder sees the same input
    np.testing.assert_allclose(predictor.get_image_embedding(), emb, rtol=0, atol=1e-6)
    logits, scores, low_p = predictor.predict(clicks, labels, return_logits=True)
    np.testing.assert_allclose(scores, iou[1:], rtol=0, atol=1e-6)
    np.testing.assert_allclose(low_p, low[1:], rtol=0, atol=1e-6)
    # OpenCV vs torch bilinear upscaling: float32 rounding differences only
    np.testing.assert_allclose(logits, up[1:], rtol=0, atol=1e-4)
    masks, _, _ = predictor.predict(clicks, labels)
    agree = (masks == (up[1:] > 0)).mean()
    assert agree > 0.9995


def test_predict_batch_matches_predict(predictor: SamPredictor) -> None:
    boxes = np.array([[190, 60, 290, 200], [50, 80, 130, 160], [0, 0, 319, 239]], np.float64)
    clicks = np.array([[[240, 130]], [[90, 120]], [[160, 120]]], np.float64)
    labels = np.ones((3, 1))
    bm, bs, bl = predictor.predict_batch(clicks, labels, boxes, return_logits=True)
    assert bm.shape == (3, 3, 240, 320) and bs.shape == (3, 3) and bl.shape == (3, 3, 64, 64)
    for i in range(3):
        m, s, lo = predictor.predict(clicks[i], labels[i], boxes[i], return_logits=True)
        np.testing.assert_allclose(bs[i], s, rtol=0, atol=1e-5)
        np.testing.assert_allclose(bl[i], lo, rtol=0, atol=1e-4)
        np.testing.assert_allclose(bm[i], m, rtol=0, atol=1e-4)


def test_threads_sharing_a_torch_backend(model, image) -> None:
    backend = TorchBackend(model)
    images = [image, np.ascontiguousarray(image[::-1]), np.ascontiguousarray(image[:, ::-1])]
    box = np.array([40, 40, 200, 180])

    def run(img):
        p = SamPredictor(backend)
        p.set_image(img)
        return p.predict(box=box, return_logits=True)

    serial = [run(img) for img in images]
    results: dict[int, tuple] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, run(images[i]))) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(3):
        for got, want in zip(results[i], serial[i]):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_torch_backend_validates_inputs(model) -> None:
    backend = TorchBackend(model)
    with pytest.raises(ValueError, match=r"\[1, 3, 256, 256\]"):
        backend.encode(np.zeros((1, 3, 128, 128), np.float32))
    with pytest.raises(TypeError, match="Sam model"):
        TorchBackend(object())
    with pytest.raises(TypeError, match="dtype"):
        TorchBackend(model, dtype=torch.int32)


def test_missing_runtime_names_the_extra() -> None:
    with pytest.raises(BackendUnavailableError, match=r"pip install 'edgesam\[fancy\]'") as info:
        import_runtime("edgesam_no_such_runtime", backend="fancy", extra="fancy")
    assert isinstance(info.value, ImportError)
