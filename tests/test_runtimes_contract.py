"""One contract for every registered backend: same outputs as torch, thread safety, bad input.

Parametrised over :data:`edgesam.runtimes.BACKENDS`; a backend whose runtime (or GPU) is
missing is skipped with the reason. Bundle backends run the shared vit_t 256-px vit_t_bundle; the
torch backend runs the model it was exported from.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from bundle_fixtures import SIZE, mask_iou, scene, small_model  # noqa: E402

from edgesam.predictor import SamPredictor  # noqa: E402
from edgesam.runtimes import BACKENDS, BackendUnavailableError, available_backends  # noqa: E402
from edgesam.runtimes.golden import check_golden  # noqa: E402
from edgesam.runtimes.loader import load_backend  # noqa: E402
from edgesam.runtimes.torch_backend import TorchBackend  # noqa: E402

# Options that make each backend compute in float32 (the parity contract is for fp32).
FP32_OPTIONS: dict[str, dict[str, Any]] = {
    "onnxruntime": {"providers": ["CPUExecutionProvider"]},
    "openvino": {"precision": "fp32"},
    "tensorrt": {"precision": "fp32"},
}


@pytest.fixture(scope="module")
def torch_backend() -> TorchBackend:
    return TorchBackend(small_model())


_OPENED: dict[str, Any] = {}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, vit_t_bundle: Path, torch_backend: TorchBackend) -> Any:
    name = request.param
    status = available_backends()[name]
    if status is not True:
        pytest.skip(f"{name}: {status}")
    if name == "torch":
        return torch_backend
    if name not in _OPENED:
        try:
            _OPENED[name] = load_backend(vit_t_bundle, name, **FP32_OPTIONS.get(name, {}))
        except BackendUnavailableError as exc:
            pytest.skip(f"{name}: {exc}")
    return _OPENED[name]


def _prompts(b: int = 3, n: int = 2) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(7)
    grid = SIZE // 16
    coords = rng.uniform(10, SIZE * 0.7, (b, n, 2)).astype(np.float32)
    labels = np.tile(np.array([1, -1] + [0] * (n - 2), np.float32), (b, 1))
    labels[1, :2] = (2, 3)
    coords[1, 1] = coords[1, 0] + 60.0
    mask = np.where(rng.uniform(size=(b, 1, 4 * grid, 4 * grid)) > 0.5, 5.0, -5.0).astype(np.float32)
    return coords, labels, mask, (np.arange(b) == b - 1).astype(np.float32)


def test_backend_attributes(backend: Any) -> None:
    assert backend.name in BACKENDS
    assert backend.image_size == SIZE and backend.mask_threshold == 0.0
    np.testing.assert_allclose(backend.pixel_mean, [123.675, 116.28, 103.53], rtol=1e-6)
    np.testing.assert_allclose(backend.pixel_std, [58.395, 57.12, 57.375], rtol=1e-6)


def test_same_outputs_as_torch(backend: Any, torch_backend: TorchBackend) -> None:
    image, _ = scene()
    from edgesam.predictor.transforms import normalize_and_pad, resize_longest_side

    x = normalize_and_pad(resize_longest_side(image, SIZE), backend.pixel_mean, backend.pixel_std, SIZE)
    ref_embed = torch_backend.encode(x)
    embed = backend.encode(x)
    assert embed.dtype == np.float32 and embed.shape == (1, 256, SIZE // 16, SIZE // 16)
    np.testing.assert_allclose(embed, ref_embed, atol=1e-4 * max(1.0, np.abs(ref_embed).max()))
    ref_iou, ref_masks = torch_backend.decode(ref_embed, *_prompts())
    iou, masks = backend.decode(embed, *_prompts())
    assert iou.shape == (3, 4) and masks.shape == (3, 4, 4 * SIZE // 16, 4 * SIZE // 16)
    assert iou.dtype == np.float32 and masks.dtype == np.float32
    np.testing.assert_allclose(iou, ref_iou, atol=1e-3)
    assert mask_iou(masks > 0, ref_masks > 0) >= 0.995


def test_predictor_parity(backend: Any, torch_backend: TorchBackend) -> None:
    image, boxes = scene(seed=5)
    ours, ref = SamPredictor(backend), SamPredictor(torch_backend)
    for p in (ours, ref):
        p.set_image(image)
    click = np.array([[boxes[0, 0] + boxes[0, 2], boxes[0, 1] + boxes[0, 3]]], np.float32) / 2
    a = ours.predict(point_coords=click, point_labels=np.array([1]))
    b = ref.predict(point_coords=click, point_labels=np.array([1]))
    assert a[0].shape == b[0].shape == (3, *image.shape[:2])
    assert mask_iou(a[0], b[0]) >= 0.995
    np.testing.assert_allclose(a[1], b[1], atol=1e-3)
    a = ours.predict_batch(boxes=boxes, multimask_output=False)
    b = ref.predict_batch(boxes=boxes, multimask_output=False)
    assert mask_iou(a[0], b[0]) >= 0.995


def test_golden_reference(backend: Any, vit_t_bundle: Path) -> None:
    result = check_golden(backend, vit_t_bundle)
    assert result.embedding_rel_error <= 1e-4
    assert result.mask_iou >= 0.995


def test_no_points_at_all(backend: Any, torch_backend: TorchBackend) -> None:
    """N = 0 (a mask input alone, no clicks, no box) is a valid decoder call."""
    embed = np.random.default_rng(3).normal(size=(1, 256, SIZE // 16, SIZE // 16)).astype(np.float32)
    _, _, mask, _ = _prompts()
    args = (np.zeros((3, 0, 2), np.float32), np.zeros((3, 0), np.float32), mask, np.ones(3, np.float32))
    iou, masks = backend.decode(embed, *args)
    ref_iou, ref_masks = torch_backend.decode(embed, *args)
    assert masks.shape == ref_masks.shape == (3, 4, 4 * SIZE // 16, 4 * SIZE // 16)
    np.testing.assert_allclose(iou, ref_iou, atol=1e-3)
    assert mask_iou(masks > 0, ref_masks > 0) >= 0.995


def test_bad_input_is_refused(backend: Any) -> None:
    if backend.name == "torch":
        pytest.skip("the torch backend's input checks belong to the predictor's tests")
    with pytest.raises(ValueError, match=r"\[1, 3, 256, 256\]"):
        backend.encode(np.zeros((1, 3, 128, 128), np.float32))
    with pytest.raises(TypeError):
        backend.encode([[0.0]])
    embed = np.zeros((1, 256, SIZE // 16, SIZE // 16), np.float32)
    coords, labels, mask, has = _prompts()
    with pytest.raises(ValueError, match="point_labels"):
        backend.decode(embed, coords, labels[:, :1], mask, has)
    with pytest.raises(ValueError, match="mask_input"):
        backend.decode(embed, coords, labels, mask[:2], has)
    with pytest.raises(ValueError, match="image_embeddings"):
        backend.decode(embed[:, :, :8], coords, labels, mask, has)


def test_threads_share_one_backend(backend: Any) -> None:
    """Several predictors on one backend in parallel threads == the same calls made serially."""
    images = [scene(seed=s)[0] for s in (11, 12, 13, 14)]
    clicks = [np.array([[40.0 + 10 * i, 60.0 + 5 * i]], np.float32) for i in range(len(images))]

    def work(i: int) -> tuple[np.ndarray, ...]:
        p = SamPredictor(backend)
        p.set_image(images[i])
        out = []
        for _ in range(3):
            masks, scores, low = p.predict(point_coords=clicks[i], point_labels=np.array([1]), return_logits=True)
            out.append(low)
        return (p.get_image_embedding(), scores, *out)

    serial = [work(i) for i in range(len(images))]
    results: dict[int, tuple[np.ndarray, ...]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(images))

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for i in range(len(images)):
        for got, want in zip(results[i], serial[i]):
            np.testing.assert_array_equal(got, want)
