"""Memory: RSS measured in a fresh runtime-only process, the backends' memory modes as applied
to the real sessions, and the predictor releasing its per-image buffers."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from bundle_fixtures import small_bundle  # noqa: E402

from edgesam.bench.memory import RssFigures, measure_rss  # noqa: E402
from edgesam.predictor import SamPredictor  # noqa: E402
from edgesam.runtimes import available_backends  # noqa: E402
from edgesam.runtimes.memory import DECODER_CHUNK, MEMORY_MODES, check_memory_mode, trim_heap  # noqa: E402
from edgesam.runtimes.onnxruntime_backend import OnnxRuntimeBackend  # noqa: E402


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return small_bundle(tmp_path_factory)


def _image(seed: int, h: int = 60, w: int = 80) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


# ---------------------------------------------------------------- measure_rss
def test_measure_rss_in_a_runtime_only_subprocess(bundle: Path) -> None:
    rss = measure_rss(bundle, backend="onnxruntime", image_size=(48, 64), calls=3, threads=1, boxes=5)
    assert isinstance(rss, RssFigures)
    assert not rss.torch_imported  # the child blocks torch: a runtime-only footprint
    assert len(rss.per_call_mb) == 3
    # numpy + OpenCV + onnxruntime alone take tens of MB; far less than a torch import would
    assert 20 < rss.baseline_mb < 400
    assert rss.loaded_mb > rss.baseline_mb  # the sessions hold the weights
    assert rss.steady_mb == max(rss.per_call_mb[1:])
    assert rss.peak_mb >= rss.steady_mb >= rss.baseline_mb
    assert rss.set_image_ms > 0 and rss.predict_ms > 0
    assert rss.to_dict()["per_call_mb"] == list(rss.per_call_mb)


def test_measure_rss_refuses_bad_arguments(bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="calls"):
        measure_rss(bundle, backend="onnxruntime", calls=0)
    with pytest.raises(ValueError, match="boxes"):
        measure_rss(bundle, backend="onnxruntime", boxes=-1)
    with pytest.raises(TypeError, match="image_size"):
        measure_rss(bundle, backend="onnxruntime", image_size=(10,))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="does not exist"):
        measure_rss(tmp_path / "missing", backend="onnxruntime")
    with pytest.raises(ValueError, match="torch"):
        measure_rss(bundle, backend="torch")
    with pytest.raises(RuntimeError, match="failed"):  # the child's error comes back
        measure_rss(bundle, backend="onnxruntime", options={"memory": "tiny"}, calls=1)


# ---------------------------------------------------------------- memory modes
def test_memory_mode_validation() -> None:
    assert [check_memory_mode(m) for m in MEMORY_MODES] == list(MEMORY_MODES)
    with pytest.raises(ValueError, match="memory must be one of"):
        check_memory_mode("small")
    with pytest.raises(TypeError, match="memory must be one of"):
        check_memory_mode(None)
    assert isinstance(trim_heap(), bool)


def test_onnxruntime_memory_modes_are_applied_to_the_sessions(bundle: Path) -> None:
    sessions, answers = {}, {}
    for mode in MEMORY_MODES:
        backend = OnnxRuntimeBackend(bundle, intra_op_threads=1, memory=mode)
        assert backend.memory == mode and mode in repr(backend)
        for role, session in (("encoder", backend._encoder), ("decoder", backend._decoder)):
            options = session.get_session_options()  # read back from the live sessions
            sessions[mode, role] = (options.enable_cpu_mem_arena, options.enable_mem_pattern)
        predictor = SamPredictor(backend)
        predictor.set_image(_image(1))
        answers[mode] = predictor.predict(point_coords=np.array([[40, 30]]), point_labels=np.array([1]))[1]
    # (arena, memory pattern)
    assert sessions["default", "encoder"] == sessions["default", "decoder"] == (True, False)
    assert sessions["runtime", "encoder"] == sessions["runtime", "decoder"] == (True, True)
    assert sessions["low", "encoder"] == (False, True) and sessions["low", "decoder"] == (False, False)
    for mode in MEMORY_MODES:  # the allocator settings never change the answer
        np.testing.assert_allclose(answers[mode], answers["runtime"], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="memory must be one of"):
        OnnxRuntimeBackend(bundle, memory="small")


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_default_decodes_batches_in_chunks(bundle: Path, runtime: str, tmp_path: Path) -> None:
    if available_backends().get(runtime) is not True:
        pytest.skip(f"{runtime} not installed")
    from edgesam.runtimes.openvino_backend import OpenVINOBackend

    def make(mode: str) -> Any:
        if runtime == "onnxruntime":
            return OnnxRuntimeBackend(bundle, intra_op_threads=1, memory=mode)
        return OpenVINOBackend(bundle, cache_dir=tmp_path / "ov", config={"INFERENCE_NUM_THREADS": 1}, memory=mode)

    rng = np.random.default_rng(4)
    x0, y0 = rng.uniform(0, 40, 2 * DECODER_CHUNK + 1), rng.uniform(0, 30, 2 * DECODER_CHUNK + 1)
    boxes = np.stack([x0, y0, x0 + 30, y0 + 25], axis=1)  # three chunks: 8 + 8 + 1
    got = {}
    for mode in MEMORY_MODES:
        backend = make(mode)
        assert backend.decoder_chunk == (None if mode == "runtime" else DECODER_CHUNK)
        predictor = SamPredictor(backend)
        predictor.set_image(_image(3))
        masks, got[mode], low_res = predictor.predict_batch(boxes=boxes, multimask_output=True)
        assert masks.shape[:2] == got[mode].shape == (len(boxes), 3) and low_res.shape[0] == len(boxes)
        got[mode, "masks"] = low_res
    for mode in MEMORY_MODES:  # the chunks (real runs of the decoder session) give the batch's answer
        np.testing.assert_allclose(got[mode], got["runtime"], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got[mode, "masks"], got["runtime", "masks"], rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(available_backends().get("openvino") is not True, reason="openvino not installed")
def test_openvino_memory_modes(bundle: Path, tmp_path: Path) -> None:
    from edgesam.runtimes.openvino_backend import OpenVINOBackend

    scores = {}
    for mode in MEMORY_MODES:
        backend = OpenVINOBackend(bundle, precision_hint="f32", cache_dir=tmp_path / "ov",
                                  config={"INFERENCE_NUM_THREADS": 1}, memory=mode)
        assert backend.memory == mode
        predictor = SamPredictor(backend)
        for seed in (1, 2):  # a second run after the intermediate buffers were released
            predictor.set_image(_image(seed))
            scores[mode, seed] = predictor.predict(point_coords=np.array([[40, 30]]),
                                                   point_labels=np.array([1]))[1]
        assert backend._in_flight == 0
    for mode in MEMORY_MODES:
        for seed in (1, 2):
            np.testing.assert_allclose(scores[mode, seed], scores["runtime", seed], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="memory must be one of"):
        OpenVINOBackend(bundle, cache_dir=None, memory="small")


# ---------------------------------------------------------------- predictor buffers
class _Probe(OnnxRuntimeBackend):
    """The real ONNX Runtime backend, noting whether an earlier embedding is alive at encode time."""

    watched: weakref.ref | None = None
    alive_during_encode: list[bool] = []

    def encode(self, image: np.ndarray) -> np.ndarray:
        gc.collect()
        self.alive_during_encode.append(self.watched is not None and self.watched() is not None)
        return super().encode(image)


def test_predictor_releases_per_image_buffers(bundle: Path) -> None:
    backend = _Probe(bundle, intra_op_threads=1)
    backend.alive_during_encode = []
    predictor = SamPredictor(backend)
    predictor.set_image(_image(1))
    first = weakref.ref(predictor.get_image_embedding())
    backend.watched = first
    predictor.set_image(_image(2, 50, 70))
    assert backend.alive_during_encode == [False, False]  # the old embedding went before encoding
    gc.collect()
    assert first() is None
    second = weakref.ref(predictor.get_image_embedding())
    predictor.reset_image()
    gc.collect()
    assert second() is None and not predictor.is_image_set
    with pytest.raises(RuntimeError, match="set_image"):
        predictor.predict(point_coords=np.array([[1, 1]]), point_labels=np.array([1]))
