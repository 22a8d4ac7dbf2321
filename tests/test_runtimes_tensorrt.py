"""TensorRT backend: the GPU-free parts everywhere; engines only where TensorRT and a GPU exist.

TensorRT itself cannot be installed without an NVIDIA GPU stack, so the tests of the builder's
version handling use small stand-in ``tensorrt`` namespaces that copy the two real enum shapes
(TensorRT 10.x and 11.x) and record what the builder is asked; that is the only place a stand-in
is used for TensorRT. The CUDA runtime parts are in ``test_runtimes_tensorrt_cuda.py``.
"""

from __future__ import annotations

import enum
import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from edgesam.runtimes.tensorrt_engine import (
    DecoderProfile,
    EngineBuildError,
    build_engine,
    check_graph_precision,
    decoder_profile_shapes,
    engine_cache_name,
    has_weak_typing_flags,
    network_creation_flags,
)

SHA = "ab" * 32


# ---------------------------------------------------------------- precision and profiles
def test_default_precision_follows_each_graph_of_the_bundle() -> None:
    from edgesam.runtimes.tensorrt_backend import default_precision

    assert default_precision({"precision": "fp32", "quantization": None}) == "fp32"
    ort_int8 = {"precision": "int8", "quantization": {"backend": "onnxruntime", "runs_on": ["onnxruntime"]}}
    assert default_precision(ort_int8) == "fp32"  # MatMulIntegerToFloat graphs are not Q/DQ
    trt_int8 = {"precision": "int8", "quantization": {"backend": "tensorrt", "graphs": {"encoder": {}},
                                                      "runs_on": ["tensorrt", "onnxruntime", "openvino"]}}
    assert default_precision(trt_int8, "encoder") == "int8"
    assert default_precision(trt_int8, "decoder") == "fp32"  # the recipe left the decoder float
    both = {**trt_int8, "quantization": {**trt_int8["quantization"], "graphs": {"encoder": {}, "decoder": {}}}}
    assert default_precision(both, "decoder") == "int8"
    fp16 = {"precision": "fp16", "quantization": {"backend": "tensorrt", "graphs": {"encoder": {}, "decoder": {}}}}
    assert default_precision(fp16, "encoder") == default_precision(fp16, "decoder") == "fp16"


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


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The exported bundle of the 128 px two-layer test model (a few seconds)."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from bundle_fixtures import tiny_model

    from edgesam.export import export_bundle

    return export_bundle(tiny_model(), tmp_path_factory.mktemp("trt") / "tiny")


def test_profile_shapes_match_the_exported_decoder_graph(tiny_bundle: Path) -> None:
    """Every dynamic decoder input has a profile entry of the right rank, fixed axes agree with
    the graph, and the min / opt / max shapes all run through the real graph."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from edgesam.export import load_bundle

    bundle = load_bundle(tiny_bundle)
    graph = onnx.load(str(bundle.path("decoder"))).graph
    h, w = bundle.embedding_shape[2:]
    profile = DecoderProfile(opt_prompts=3, max_prompts=5, opt_points=2, max_points=4)
    shapes = decoder_profile_shapes((h, w), profile)
    declared = {i.name: [d.dim_value if d.HasField("dim_value") else None for d in i.type.tensor_type.shape.dim]
                for i in graph.input}
    dynamic = {name for name, dims in declared.items() if None in dims}
    assert dynamic == set(shapes), "the profile must cover exactly the decoder's dynamic inputs"
    assert None not in declared["image_embeddings"] and declared["image_embeddings"] == [1, 256, h, w]
    for name, triple in shapes.items():
        for shape in triple:
            assert len(shape) == len(declared[name])
            assert all(d is None or d == s for d, s in zip(declared[name], shape)), (name, shape, declared[name])
    session = ort.InferenceSession(str(bundle.path("decoder")), providers=["CPUExecutionProvider"])
    embedding = np.zeros((1, 256, h, w), np.float32)
    for k in range(3):  # min, opt, max
        feeds = {name: np.zeros(triple[k], np.float32) for name, triple in shapes.items()}
        b = shapes["point_coords"][k][0]
        iou, masks = session.run(None, {"image_embeddings": embedding, **feeds})
        assert iou.shape[0] == b and masks.shape[0] == b and masks.shape[-2:] == (4 * h, 4 * w)


def test_engine_cache_names_are_unique_per_gpu_version_precision_profile() -> None:
    base = dict(gpu_name="NVIDIA Jetson Orin NX", trt_version="10.3.0", precision="fp16")
    name = engine_cache_name("encoder", SHA, **base)
    assert name == "encoder-abababababababab-nvidia-jetson-orin-nx-trt10.3.0-fp16.engine"
    variants = {
        name,
        engine_cache_name("encoder", "cd" * 32, **base),
        engine_cache_name("encoder", SHA, **{**base, "gpu_name": "NVIDIA GeForce RTX 4090"}),
        engine_cache_name("encoder", SHA, **{**base, "trt_version": "11.4.0"}),
        engine_cache_name("encoder", SHA, **{**base, "precision": "fp32"}),
        engine_cache_name("decoder", SHA, **base, profile=DecoderProfile()),
        engine_cache_name("decoder", SHA, **base, profile=DecoderProfile(max_prompts=64)),
    }
    assert len(variants) == 7
    assert all("/" not in v and " " not in v for v in variants)
    with pytest.raises(ValueError, match="precision"):
        engine_cache_name("encoder", SHA, gpu_name="x", trt_version="10", precision="int4")


def test_requested_precision_must_be_the_graphs_own() -> None:
    check_graph_precision("fp32", has_qdq=False, has_fp16=False)
    check_graph_precision("fp16", has_qdq=False, has_fp16=True)
    check_graph_precision("int8", has_qdq=True, has_fp16=False)
    check_graph_precision("int8", has_qdq=True, has_fp16=True)  # Q/DQ with FP16 float parts is INT8
    with pytest.raises(ValueError, match=r"'fp16' asked for, but x.onnx is a fp32 graph.*--precision fp16"):
        check_graph_precision("fp16", has_qdq=False, has_fp16=False, source="x.onnx")
    with pytest.raises(ValueError, match=r"'int8' asked for.*fp32 graph.*edgesam quantize"):
        check_graph_precision("int8", has_qdq=False, has_fp16=False)
    with pytest.raises(ValueError, match=r"'fp32' asked for.*int8 graph"):
        check_graph_precision("fp32", has_qdq=True, has_fp16=False)
    with pytest.raises(ValueError, match=r"'fp32' asked for.*fp16 graph"):
        check_graph_precision("fp32", has_qdq=False, has_fp16=True)
    with pytest.raises(ValueError, match="precision must be one of"):
        check_graph_precision("bf16", has_qdq=False, has_fp16=False)


# ---------------------------------------------------------------- TensorRT 10 vs 11 API shapes
class _BuilderFlag10(enum.IntEnum):  # TensorRT 10.3 (subset; the values are the real ones)
    FP16 = 0
    INT8 = 1
    DEBUG = 2
    GPU_FALLBACK = 3
    REFIT = 5
    TF32 = 7
    OBEY_PRECISION_CONSTRAINTS = 10


class _Creation10(enum.IntEnum):  # TensorRT 10.x: EXPLICIT_BATCH is bit 0, STRONGLY_TYPED bit 1
    EXPLICIT_BATCH = 0
    STRONGLY_TYPED = 1


class _BuilderFlag11(enum.IntEnum):  # TensorRT 11.x: no FP16/INT8/OBEY_PRECISION_CONSTRAINTS
    DEBUG = 0
    GPU_FALLBACK = 1
    REFIT = 2
    TF32 = 3


class _Creation11(enum.IntEnum):  # TensorRT 11.x: STRONGLY_TYPED (ignored, always on) is bit 0
    STRONGLY_TYPED = 0
    PREFER_AOT_PYTHON_PLUGINS = 1
    PREFER_JIT_PYTHON_PLUGINS = 2


class _Creation8(enum.IntEnum):  # TensorRT 8.x: no strongly typed networks
    EXPLICIT_BATCH = 0
    EXPLICIT_PRECISION = 1


def _trt(version: str, builder_flag: Any, creation: Any) -> SimpleNamespace:
    return SimpleNamespace(__version__=version, BuilderFlag=builder_flag, NetworkDefinitionCreationFlag=creation)


TRT10 = _trt("10.3.0.30", _BuilderFlag10, _Creation10)
TRT11 = _trt("11.4.0.106", _BuilderFlag11, _Creation11)


def test_strongly_typed_creation_flag_on_both_enum_shapes() -> None:
    assert has_weak_typing_flags(TRT10) and not has_weak_typing_flags(TRT11)
    assert network_creation_flags(TRT10) == 1 << 1  # the bit moved between 10 and 11
    assert network_creation_flags(TRT11) == 1 << 0
    with pytest.raises(EngineBuildError, match="TensorRT 8.6.1 cannot build strongly typed networks"):
        network_creation_flags(_trt("8.6.1", _BuilderFlag10, _Creation8))
    # a release without the (deprecated) member and without the precision flags: strongly typed by construction
    later = enum.IntEnum("Creation", {"PREFER_AOT_PYTHON_PLUGINS": 0})
    assert network_creation_flags(_trt("12.0", _BuilderFlag11, later)) == 0


class _Recorder:
    """Stand-in builder objects that record what :func:`build_engine` asks of TensorRT."""

    def __init__(self, trt: SimpleNamespace, layers: list[tuple[str, str]]) -> None:
        self.trt, self.layers, self.calls = trt, layers, []

    def module(self) -> SimpleNamespace:
        rec = self
        trt = self.trt

        class Config:
            def set_memory_pool_limit(self, pool: Any, size: int) -> None:
                rec.calls.append(("pool", size))

            def set_flag(self, flag: Any) -> None:
                rec.calls.append(("set_flag", flag.name))

            def clear_flag(self, flag: Any) -> None:
                rec.calls.append(("clear_flag", flag.name))

            def add_optimization_profile(self, profile: Any) -> None:
                rec.calls.append(("profile", dict(profile.shapes)))

        class Profile:
            def __init__(self) -> None:
                self.shapes: dict[str, Any] = {}

            def set_shape(self, name: str, lo: Any, opt: Any, hi: Any) -> None:
                self.shapes[name] = (lo, opt, hi)

        def layer(kind: str, dtype: str) -> SimpleNamespace:
            out = SimpleNamespace(dtype=dtype)
            return SimpleNamespace(type=kind, num_outputs=1, get_output=lambda j: out)

        network = SimpleNamespace(num_layers=len(self.layers), get_layer=lambda i: layer(*self.layers[i]))

        class Builder:
            def __init__(self, logger: Any) -> None:
                pass

            def create_network(self, flags: int) -> Any:
                rec.calls.append(("create_network", flags))
                return network

            def create_builder_config(self) -> Config:
                return Config()

            def create_optimization_profile(self) -> Profile:
                return Profile()

            def build_serialized_network(self, net: Any, config: Any) -> bytes:
                return b"plan"

        class OnnxParser:
            def __init__(self, net: Any, logger: Any) -> None:
                pass

            def parse_from_file(self, path: str) -> bool:
                return True

        return SimpleNamespace(
            **vars(trt), Builder=Builder, OnnxParser=OnnxParser, float16="half", float32="float",
            LayerType=SimpleNamespace(QUANTIZE="Q", DEQUANTIZE="DQ"),
            MemoryPoolType=SimpleNamespace(WORKSPACE="workspace"),
        )  # fmt: skip


@pytest.mark.parametrize("api", [TRT10, TRT11], ids=["trt10", "trt11"])
@pytest.mark.parametrize(("precision", "layers"), [
    ("fp32", [("CONV", "float"), ("MATMUL", "float")]),
    ("fp16", [("CAST", "half"), ("CONV", "half"), ("NORMALIZATION", "float")]),
    ("int8", [("Q", "int8"), ("DQ", "float"), ("CONV", "float")]),
])  # fmt: skip
def test_build_sets_no_precision_flag_on_either_version(api: SimpleNamespace, precision: str,
                                                        layers: list[tuple[str, str]]) -> None:
    rec = _Recorder(api, layers)
    blob = build_engine(rec.module(), None, Path("x.onnx"), precision=precision,
                        profile_shapes={"point_coords": ((1, 0, 2), (1, 2, 2), (4, 4, 2))})  # fmt: skip
    assert blob == b"plan"
    assert ("create_network", network_creation_flags(api)) in rec.calls
    assert not [c for c in rec.calls if c[0] == "set_flag"], "strongly typed builds set no precision flag"
    assert ("clear_flag", "TF32") in rec.calls  # float32 layers run in float32 on 10 and 11 alike
    assert ("profile", {"point_coords": ((1, 0, 2), (1, 2, 2), (4, 4, 2))}) in rec.calls
    other = {"fp32": "fp16", "fp16": "int8", "int8": "fp32"}[precision]
    with pytest.raises(ValueError, match=f"'{other}' asked for, but x.onnx is a {precision} graph"):
        build_engine(rec.module(), None, Path("x.onnx"), precision=other)


def test_tensorrt_missing_is_reported_as_unavailable(tmp_path: Path) -> None:
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed here")
    from edgesam.quantization.tensorrt_int8 import tensorrt_available
    from edgesam.runtimes.base import BackendUnavailableError
    from edgesam.runtimes.tensorrt_backend import TensorRTBackend

    assert tensorrt_available() is False
    with pytest.raises(BackendUnavailableError, match=r"edgesam\[tensorrt\]"):
        TensorRTBackend(tmp_path)  # refused before the bundle is even read


# ---------------------------------------------------------------- on a GPU
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
    vit_t_bundle: Path, tmp_path: Path, precision: str
) -> None:
    pytest.importorskip("torch")

    from edgesam.runtimes.golden import check_golden
    from edgesam.runtimes.tensorrt_backend import GOLDEN_MASK_IOU, TensorRTBackend

    bundle = vit_t_bundle
    if precision == "fp16":
        from edgesam.quantization.fp16 import fp16_bundle

        bundle = fp16_bundle(bundle, tmp_path / "fp16").path
        with pytest.raises(ValueError, match="'fp32' asked for"):
            TensorRTBackend(bundle, precision="fp32", cache_dir=None)
    backend = TensorRTBackend(bundle, cache_dir=tmp_path)
    assert backend.precision == precision
    assert backend.golden is not None and backend.golden.mask_iou >= GOLDEN_MASK_IOU[precision]
    assert len(list(tmp_path.glob("*.engine"))) == 2
    again = TensorRTBackend(bundle, cache_dir=tmp_path)  # from the engine cache
    assert check_golden(again).mask_iou == pytest.approx(backend.golden.mask_iou)
    with pytest.raises(ValueError, match="profile"):
        again.decode(np.zeros(backend.embedding_shape, np.float32), np.zeros((64, 1, 2), np.float32),
                     np.ones((64, 1), np.float32), np.zeros((64, 1, 64, 64), np.float32), np.zeros(64, np.float32))


def test_bench_plans_tensorrt_fp16_only_with_an_fp16_bundle() -> None:
    from edgesam.bench.variants import plan_variants

    variants, skipped = plan_variants(["tensorrt"], ["fp32", "fp16", "int8"], has_torch_weights=False,
                                      availability={"tensorrt": True}, probe=None, isa=())  # fmt: skip
    assert [(v.precision, v.bundle_kind, dict(v.options)) for v in variants] == [
        ("fp32", "fp32", {"precision": "fp32"}), ("int8", "int8", {"precision": "int8"})]
    assert [(s.precision) for s in skipped] == ["fp16"]
    assert "FP16-typed bundle" in skipped[0].reason and "--precision fp16" in skipped[0].reason
