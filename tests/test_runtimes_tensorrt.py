"""TensorRT backend: the GPU-free parts everywhere; engines only where TensorRT and a GPU exist."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from edgesam.runtimes.tensorrt_engine import (
    DecoderProfile,
    builder_flags,
    decoder_profile_shapes,
    engine_cache_name,
)

SHA = "ab" * 32


def test_default_precision_follows_the_bundle() -> None:
    from edgesam.runtimes.tensorrt_backend import default_precision

    assert default_precision({"precision": "fp32", "quantization": None}) == "fp32"
    ort_int8 = {"precision": "int8", "quantization": {"backend": "onnxruntime", "runs_on": ["onnxruntime"]}}
    assert default_precision(ort_int8) == "fp32"  # MatMulIntegerToFloat graphs are not Q/DQ
    trt_int8 = {"precision": "int8",
                "quantization": {"backend": "tensorrt", "runs_on": ["tensorrt", "onnxruntime", "openvino"]}}
    assert default_precision(trt_int8) == "int8"


def test_profile_validation_and_accepts() -> None:
    profile = DecoderProfile(max_prompts=8, max_points=4)
    assert profile.accepts(1, 1) and profile.accepts(8, 4) and profile.accepts(1, 0)
    assert not profile.accepts(9, 1) and not profile.accepts(1, 5) and not profile.accepts(0, 1)
    assert not DecoderProfile(min_points=1).accepts(1, 0)
    with pytest.raises(ValueError, match="min_prompts <= opt_prompts <= max_prompts"):
        DecoderProfile(opt_prompts=4, max_prompts=2)
    with pytest.raises(ValueError, match="0 <= min_points"):
        DecoderProfile(min_points=-1)
    with pytest.raises(ValueError, match="1 <= min_prompts"):
        DecoderProfile(min_prompts=0)


def test_profile_shapes_cover_every_dynamic_input() -> None:
    profile = DecoderProfile(opt_prompts=4, max_prompts=16, opt_points=3, max_points=6)
    shapes = decoder_profile_shapes((64, 64), profile)
    assert shapes == {
        "point_coords": ((1, 0, 2), (4, 3, 2), (16, 6, 2)),
        "point_labels": ((1, 0), (4, 3), (16, 6)),
        "mask_input": ((1, 1, 256, 256), (4, 1, 256, 256), (16, 1, 256, 256)),
        "has_mask_input": ((1,), (4,), (16,)),
    }


def test_engine_cache_names_are_unique_per_gpu_version_precision_profile() -> None:
    base = dict(gpu_name="NVIDIA Jetson Orin NX", trt_version="10.3.0", precision="fp16")
    name = engine_cache_name("encoder", SHA, **base)
    assert name == "encoder-abababababababab-nvidia-jetson-orin-nx-trt10.3.0-fp16.engine"
    variants = {
        name,
        engine_cache_name("encoder", "cd" * 32, **base),
        engine_cache_name("encoder", SHA, **{**base, "gpu_name": "NVIDIA GeForce RTX 4090"}),
        engine_cache_name("encoder", SHA, **{**base, "trt_version": "10.4.0"}),
        engine_cache_name("encoder", SHA, **{**base, "precision": "fp32"}),
        engine_cache_name("decoder", SHA, **base, profile=DecoderProfile()),
        engine_cache_name("decoder", SHA, **base, profile=DecoderProfile(max_prompts=64)),
    }
    assert len(variants) == 7
    assert all("/" not in v and " " not in v for v in variants)
    with pytest.raises(ValueError, match="precision"):
        engine_cache_name("encoder", SHA, gpu_name="x", trt_version="10", precision="int4")


def test_builder_flags_never_downgrade_int8() -> None:
    assert builder_flags("fp32", has_qdq=False) == ()
    assert builder_flags("fp16", has_qdq=False) == ("FP16",)
    assert builder_flags("int8", has_qdq=True) == ("INT8", "FP16")
    with pytest.raises(ValueError, match="QuantizeLinear/DequantizeLinear"):
        builder_flags("int8", has_qdq=False)
    # TensorRT 11: strongly typed, no precision flags; FP16 must come from the graph itself
    assert builder_flags("fp32", has_qdq=False, weakly_typed=False) == ()
    assert builder_flags("int8", has_qdq=True, weakly_typed=False) == ()
    with pytest.raises(ValueError, match="TensorRT 11 removed the FP16 builder flag"):
        builder_flags("fp16", has_qdq=False, weakly_typed=False)
    with pytest.raises(ValueError, match="QuantizeLinear"):
        builder_flags("int8", has_qdq=False, weakly_typed=False)


def _gpu_reason() -> str | None:
    if importlib.util.find_spec("tensorrt") is None:
        return "tensorrt is not installed (pip install 'edgesam[tensorrt]' on a machine with an NVIDIA GPU)"
    try:
        from edgesam.runtimes.tensorrt_backend import _Cuda, _import_cudart

        cuda = _Cuda(_import_cudart())
        if cuda(cuda.rt.cudaGetDeviceCount()) < 1:
            return "no CUDA GPU visible"
    except Exception as exc:  # noqa: BLE001 -- any failure here means: cannot run engines
        return f"no usable CUDA runtime: {exc}"
    return None


@pytest.mark.gpu
@pytest.mark.skipif(_gpu_reason() is not None, reason=str(_gpu_reason()))
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_engines_match_the_golden_reference(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, precision: str
) -> None:
    pytest.importorskip("torch")
    from bundle_fixtures import small_bundle

    from edgesam.runtimes.golden import check_golden
    from edgesam.runtimes.tensorrt_backend import GOLDEN_MASK_IOU, TensorRTBackend

    import tensorrt as trt

    if precision == "fp16" and not hasattr(trt.BuilderFlag, "FP16"):
        pytest.skip(f"TensorRT {trt.__version__} has no FP16 builder flag (strongly typed networks only)")
    bundle = small_bundle(tmp_path_factory)
    backend = TensorRTBackend(bundle, precision=precision, cache_dir=tmp_path)
    assert backend.golden is not None and backend.golden.mask_iou >= GOLDEN_MASK_IOU[precision]
    assert len(list(tmp_path.glob("*.engine"))) == 2
    again = TensorRTBackend(bundle, precision=precision, cache_dir=tmp_path)  # from the engine cache
    assert check_golden(again).mask_iou == pytest.approx(backend.golden.mask_iou)
    with pytest.raises(ValueError, match="profile"):
        import numpy as np

        again.decode(np.zeros(backend.embedding_shape, np.float32), np.zeros((64, 1, 2), np.float32),
                     np.ones((64, 1), np.float32), np.zeros((64, 1, 64, 64), np.float32), np.zeros(64, np.float32))
