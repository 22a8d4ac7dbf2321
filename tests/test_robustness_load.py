"""Under load: flat memory over thousands of predictions, and thread-safe shared backends."""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgesam.bench.timing import current_rss_mb
from edgesam.predictor import SamPredictor

pytest.importorskip("torch")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnxruntime")
    from bundle_fixtures import tiny_model

    from edgesam.export import export_bundle

    return export_bundle(tiny_model(), tmp_path_factory.mktemp("load") / "tiny")


def _backend(kind: str, bundle: Path | None) -> Any:
    if kind == "torch":
        import edgesam
        from edgesam.runtimes.torch_backend import TorchBackend

        return TorchBackend(edgesam.load_model("edgesam-demo"))
    from edgesam.runtimes.loader import load_backend

    return load_backend(bundle, "onnxruntime")


def _prompt(rng: np.random.Generator, i: int, size: tuple[int, int]) -> dict[str, Any]:
    """Prompt ``i`` of a rotating mix: clicks, boxes, both, with and without mask input."""
    h, w = size
    kind = i % 4
    out: dict[str, Any] = {"multimask_output": bool(i % 2), "return_logits": i % 7 == 0}
    if kind in (0, 2):
        n = 1 + i % 3
        out["point_coords"] = rng.uniform(0, [w, h], (n, 2))
        out["point_labels"] = rng.integers(0, 2, n)
    if kind in (1, 2):
        x0, y0 = rng.uniform(0, [w / 2, h / 2])
        out["box"] = np.array([x0, y0, x0 + rng.uniform(1, w / 2), y0 + rng.uniform(1, h / 2)])
    if kind == 3:
        out["mask_input"] = rng.normal(0, 4, (1, 32, 32)).astype(np.float32)
        out["point_coords"], out["point_labels"] = np.array([[w / 2, h / 2]]), np.array([1])
    return out


def test_soak_2000_predictions_keep_memory_flat(tiny_bundle: Path) -> None:
    """2,000 decoder runs (ONNX Runtime, 128 px model): resident memory stays within 30 MB."""
    predictor = SamPredictor.from_bundle(tiny_bundle, intra_op_threads=1)
    image = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    predictor.set_image(image)
    rng = np.random.default_rng(1)
    total, warmup = 2000, 200
    start = time.perf_counter()
    for i in range(total):
        if i == warmup:
            gc.collect()
            before = current_rss_mb()
        masks, scores, _ = predictor.predict(**_prompt(rng, i, (96, 128)))
        assert masks.shape[1:] == (96, 128) and np.isfinite(scores).all()
    gc.collect()
    after = current_rss_mb()
    seconds = time.perf_counter() - start
    if before is None or after is None:
        pytest.skip("resident memory is not readable on this OS")
    assert after - before < 30.0, f"RSS grew {after - before:.1f} MB over {total - warmup} predictions"
    assert seconds < 120, f"{total} predictions took {seconds:.0f} s"


def _work(predictor: SamPredictor, images: list[np.ndarray], prompts: list[dict[str, Any]]) -> list[tuple]:
    """Alternate between images; for each, run every prompt. Returns all outputs in order."""
    out = []
    for image in images:
        predictor.set_image(image)
        out.append(("embedding", predictor.get_image_embedding().copy()))
        for prompt in prompts:
            out.append(predictor.predict(**prompt))
        out.append(predictor.predict_batch(boxes=np.array([[2, 2, 40, 30], [10, 5, 60, 50]], np.float32)))
    return out


@pytest.mark.parametrize("kind", ["torch", "onnxruntime"])
def test_threads_with_their_own_predictor_match_serial_use(kind: str, request: pytest.FixtureRequest) -> None:
    bundle = request.getfixturevalue("tiny_bundle") if kind == "onnxruntime" else None
    backend = _backend(kind, bundle)
    n_threads = 4
    rng = np.random.default_rng(7)
    jobs = []
    for t in range(n_threads):
        images = [rng.integers(0, 256, (60 + 8 * t, 80, 3), dtype=np.uint8) for _ in range(2)]
        prompts = [_prompt(rng, i, images[0].shape[:2]) for i in range(4)]
        jobs.append((images, prompts))
    serial = [_work(SamPredictor(backend), *job) for job in jobs]

    results: list[list[tuple] | None] = [None] * n_threads
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_threads)

    def run(t: int) -> None:
        try:
            predictor = SamPredictor(backend)
            barrier.wait(timeout=30)
            results[t] = _work(predictor, *jobs[t])
        except BaseException as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors
    for t in range(n_threads):
        assert results[t] is not None and len(results[t]) == len(serial[t])
        for got, want in zip(results[t], serial[t]):
            for a, b in zip(got, want):
                if isinstance(a, str):
                    assert a == b
                else:
                    assert a.dtype == b.dtype and np.array_equal(a, b), f"thread {t} differs from serial use"
