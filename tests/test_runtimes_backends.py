"""Backend-specific options: ONNX Runtime providers/threads, OpenVINO precision and IR cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from bundle_fixtures import copy_bundle  # noqa: E402

from edgesam.export import load_bundle  # noqa: E402
from edgesam.predictor import SamPredictor  # noqa: E402
from edgesam.runtimes.cache import resolve_cache_dir  # noqa: E402
from edgesam.runtimes.golden import GoldenMismatchError, check_golden  # noqa: E402
from edgesam.runtimes.onnxruntime_backend import OnnxRuntimeBackend, default_providers  # noqa: E402


@pytest.fixture
def bundle(vit_t_bundle: Path, tmp_path: Path) -> Path:
    return copy_bundle(vit_t_bundle, tmp_path / "b")


# ---------------------------------------------------------------- onnxruntime
def test_default_providers_put_cpu_last() -> None:
    available = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider", "AzureExecutionProvider"]
    assert default_providers(available) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert default_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]


def test_onnxruntime_options(vit_t_bundle: Path) -> None:
    import onnxruntime as ort

    backend = OnnxRuntimeBackend(vit_t_bundle, intra_op_threads=1, inter_op_threads=1)
    assert backend.providers[-1] == "CPUExecutionProvider"
    assert backend._encoder.get_session_options().intra_op_num_threads == 1
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    plain = OnnxRuntimeBackend(vit_t_bundle, session_options=options, providers=["CPUExecutionProvider"])
    assert check_golden(plain).mask_iou >= 0.995
    with pytest.raises(ValueError, match="not available in this onnxruntime"):
        OnnxRuntimeBackend(vit_t_bundle, providers=["NoSuchExecutionProvider"])
    with pytest.raises(ValueError, match=">= 0"):
        OnnxRuntimeBackend(vit_t_bundle, intra_op_threads=-2)


def test_from_bundle(vit_t_bundle: Path) -> None:
    predictor = SamPredictor.from_bundle(vit_t_bundle, backend="onnxruntime", intra_op_threads=1)
    assert predictor.backend.name == "onnxruntime"
    predictor.set_image(np.full((40, 60, 3), 128, np.uint8))
    masks, scores, low = predictor.predict(point_coords=np.array([[30, 20]]), point_labels=np.array([1]))
    assert masks.shape == (3, 40, 60) and scores.shape == (3,) and low.shape == (3, 64, 64)


def test_golden_gate_raises_on_mismatch(vit_t_bundle: Path) -> None:
    backend = OnnxRuntimeBackend(vit_t_bundle)

    class Shifted:  # a backend whose masks are wrong (all logits pushed up)
        name, image_size, bundle = "shifted", backend.image_size, backend.bundle

        def encode(self, x):
            return backend.encode(x)

        def decode(self, *args):
            iou, masks = backend.decode(*args)
            return iou, masks + 50.0

    with pytest.raises(GoldenMismatchError, match="mean mask IoU"):
        check_golden(Shifted(), min_mask_iou=0.9)


# ---------------------------------------------------------------- openvino
def _openvino():
    return pytest.importorskip("openvino", reason="openvino not installed: pip install 'edgesam[openvino]'")


def test_openvino_precision_is_recorded(bundle: Path) -> None:
    _openvino()
    from edgesam.runtimes.openvino_backend import OpenVINOBackend

    f32 = OpenVINOBackend(bundle, precision="fp32")
    assert f32.effective_precision == "f32" and f32.effective_precisions == {"encoder": "f32", "decoder": "f32"}
    default = OpenVINOBackend(bundle)
    compiled = default._compiled["encoder"].get_property("INFERENCE_PRECISION_HINT")
    assert default.effective_precision == compiled.get_type_name()
    assert default.effective_precision in ("f32", "bf16", "f16")
    with pytest.raises(ValueError, match="precision_hint"):
        OpenVINOBackend(bundle, precision_hint="int4")


def test_openvino_ir_cache_beside_bundle(bundle: Path) -> None:
    _openvino()
    from edgesam.runtimes.openvino_backend import OpenVINOBackend

    first = OpenVINOBackend(bundle, precision="fp32")
    assert first.cache_dir == bundle.resolve() / "openvino_cache"
    cached = sorted(p.name for p in first.cache_dir.glob("*.xml"))
    assert len(cached) == 2 and all("-ov" in name for name in cached)
    stamps = {p: p.stat().st_mtime_ns for p in first.cache_dir.glob("*.*")}
    second = OpenVINOBackend(bundle, precision="fp32")
    assert {p: p.stat().st_mtime_ns for p in second.cache_dir.glob("*.*")} == stamps  # reused, not rewritten
    x = np.random.default_rng(0).normal(size=(1, 3, 256, 256)).astype(np.float32)
    np.testing.assert_array_equal(first.encode(x), second.encode(x))
    load_bundle(bundle)  # the cache does not invalidate the bundle


def test_openvino_unwritable_bundle_uses_user_cache(bundle: Path, tmp_path: Path, monkeypatch) -> None:
    _openvino()
    from edgesam.runtimes.openvino_backend import OpenVINOBackend

    (bundle / "openvino_cache").write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    loaded = load_bundle(bundle)
    expected = tmp_path / "xdg" / "edgesam" / "openvino" / loaded.sha256("encoder")[:16]
    assert resolve_cache_dir(loaded, "auto", "openvino") == expected
    backend = OpenVINOBackend(bundle, precision="fp32")
    assert backend.cache_dir == expected and len(list(expected.glob("*.xml"))) == 2
    with pytest.raises(ValueError, match="not a writable folder"):
        OpenVINOBackend(bundle, cache_dir=bundle / "openvino_cache" / "sub")
    none = OpenVINOBackend(bundle, precision_hint="f32", cache_dir=None)
    assert none.cache_dir is None and check_golden(none).mask_iou >= 0.995


def test_openvino_from_bundle(vit_t_bundle: Path) -> None:
    _openvino()
    predictor = SamPredictor.from_bundle(vit_t_bundle, backend="openvino", precision_hint="f32", performance_hint="LATENCY")
    assert predictor.backend.name == "openvino" and "OpenVINOBackend" in repr(predictor.backend)
    assert os.fspath(predictor.backend.bundle.root) == os.fspath(vit_t_bundle.resolve())
