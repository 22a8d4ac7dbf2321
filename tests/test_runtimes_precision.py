"""Faithful by default: every backend runs a bundle at its own precision unless asked, and a
lowered precision is checked against the bundle's golden outputs (real OpenVINO / ORT sessions)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from bundle_fixtures import copy_bundle  # noqa: E402

from edgesam.bundle.format import METADATA_FILE, load_bundle, write_metadata  # noqa: E402
from edgesam.runtimes.golden import check_golden  # noqa: E402
from edgesam.runtimes.precision import (  # noqa: E402
    PrecisionCheckError,
    bundle_float_precision,
    normalize_precision,
    precision_tolerance,
)


def _openvino():
    return pytest.importorskip("openvino", reason="openvino not installed: pip install 'edgesam[openvino]'")


def _cpu_runs_bf16() -> bool:
    ov = _openvino()
    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return "BF16" in [str(c).upper() for c in caps]


def test_precision_words_are_shared() -> None:
    assert normalize_precision("f32") == "fp32" and normalize_precision("bfloat16") == "bf16"
    assert normalize_precision(None) is None
    with pytest.raises(ValueError, match="precision must be one of"):
        normalize_precision("int4")


def test_openvino_default_is_f32_even_where_bf16_is_the_device_default(vit_t_bundle: Path) -> None:
    ov = _openvino()
    from edgesam.runtimes.openvino_backend import OpenVINOBackend

    backend = OpenVINOBackend(vit_t_bundle, cache_dir=None)
    assert backend.precision == "fp32" and backend.golden is None
    assert backend.effective_precisions == {"encoder": "f32", "decoder": "f32"}
    # what OpenVINO would have picked on its own (bf16 on CPUs that support it)
    native = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()
    assert native == ("bf16" if _cpu_runs_bf16() else "f32")
    assert check_golden(backend).mask_iou >= 0.99


def test_openvino_precision_hint_is_a_deprecated_alias(vit_t_bundle: Path) -> None:
    _openvino()
    from edgesam.runtimes.openvino_backend import OpenVINOBackend

    with pytest.warns(DeprecationWarning, match="precision_hint"):
        backend = OpenVINOBackend(vit_t_bundle, precision_hint="f32", cache_dir=None)
    assert backend.precision == "fp32" and backend.effective_precision == "f32"
    with pytest.raises(ValueError, match="disagree"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        OpenVINOBackend(vit_t_bundle, precision="bf16", precision_hint="f32", cache_dir=None)


def test_openvino_lowered_precision_is_checked_against_the_golden_outputs(vit_t_bundle: Path) -> None:
    _openvino()
    from edgesam.runtimes.openvino_backend import OpenVINOBackend

    unchecked = OpenVINOBackend(vit_t_bundle, precision="bf16", check=False, cache_dir=None)
    assert unchecked.precision == "bf16" and unchecked.golden is None
    if not _cpu_runs_bf16():
        assert unchecked.effective_precision == "f32"  # the device cannot lower it
        return
    assert unchecked.effective_precision == "bf16"
    measured = check_golden(unchecked).mask_iou
    passed = OpenVINOBackend(vit_t_bundle, precision="bf16", check=measured, cache_dir=None)
    assert passed.golden is not None and passed.golden.mask_iou == pytest.approx(measured, abs=1e-6)
    if measured < 1.0:
        with pytest.raises(PrecisionCheckError, match=f"measured mean mask IoU {measured:.4f}") as info:
            OpenVINOBackend(vit_t_bundle, precision="bf16", check=min(1.0, measured + 1e-3), cache_dir=None)
        assert "check=False" in str(info.value)
    with pytest.raises(ValueError, match="check must be"):
        OpenVINOBackend(vit_t_bundle, precision="bf16", check=2.0, cache_dir=None)


def test_recorded_float_precision_and_tolerance(vit_t_bundle: Path, tmp_path: Path) -> None:
    _openvino()
    from edgesam.runtimes.openvino_backend import OpenVINOBackend

    bundle = copy_bundle(vit_t_bundle, tmp_path / "b")
    meta = json.loads((bundle / METADATA_FILE).read_text())
    meta = {k: v for k, v in meta.items() if k not in ("format", "format_version", "files")}
    meta["float_precision"] = "bf16"
    meta["precision_check"] = {"min_mask_iou": 0.5}
    (bundle / METADATA_FILE).unlink()
    write_metadata(bundle, meta)
    loaded = load_bundle(bundle)
    assert bundle_float_precision(loaded) == "bf16" and precision_tolerance(loaded, "fp16") == 0.5
    backend = OpenVINOBackend(bundle, cache_dir=None)
    assert backend.precision == "bf16" and backend.golden is None  # its own precision: no check


def test_onnxruntime_refuses_a_lower_precision(vit_t_bundle: Path) -> None:
    from edgesam.runtimes.onnxruntime_backend import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(vit_t_bundle, precision="fp32")
    assert backend.effective_precision == "fp32"
    with pytest.raises(ValueError, match="fp32 only"):
        OnnxRuntimeBackend(vit_t_bundle, precision="bf16")


def test_torch_precision_word() -> None:
    torch = pytest.importorskip("torch")
    from bundle_fixtures import tiny_model

    from edgesam.runtimes.torch_backend import TorchBackend

    backend = TorchBackend(tiny_model(), precision="bf16")
    assert backend.dtype == torch.bfloat16 and backend.effective_precision == "bf16"
    assert TorchBackend(tiny_model()).precision == "fp32"
    with pytest.raises(ValueError, match="not both"):
        TorchBackend(tiny_model(), precision="fp16", dtype=torch.float16)


def test_a_non_finite_embedding_is_an_error_not_a_decode(vit_t_bundle: Path) -> None:
    """NaN/inf out of the encoder (a reduced precision overflowing) stops at encode: decoding it
    gives meaningless masks, and OpenVINO bf16 has crashed the process on such embeddings."""
    from edgesam.runtimes.bundle_backend import NonFiniteOutputError
    from edgesam.runtimes.onnxruntime_backend import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(vit_t_bundle)
    size = backend.image_size
    good = np.zeros((1, 3, size, size), np.float32)
    assert np.isfinite(backend.encode(good)).all()
    bad = good.copy()
    bad[0, :, 10, 10] = np.inf  # an overflowed input pixel poisons the attention window it is in
    with pytest.raises(NonFiniteOutputError, match="NaN/inf in the image embedding"):
        backend.encode(bad)
