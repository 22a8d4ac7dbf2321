"""Bundle validation: every kind of broken bundle gives a clear error saying what to do."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from bundle_fixtures import copy_bundle, tiny_model  # noqa: E402

from edgesam.export import BundleError, BundleIntegrityError, export_bundle, load_bundle  # noqa: E402
from edgesam.bundle.format import METADATA_FILE, write_metadata  # noqa: E402
from edgesam.bundle.onnx_refs import OnnxParseError, external_data_locations  # noqa: E402
from edgesam.runtimes import BackendUnavailableError, available_backends  # noqa: E402
from edgesam.runtimes.loader import load_backend  # noqa: E402


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_bundle(tiny_model(), tmp_path_factory.mktemp("valid") / "tiny")


@pytest.fixture
def bundle(pristine: Path, tmp_path: Path) -> Path:
    return copy_bundle(pristine, tmp_path / "copy")


def _meta(bundle: Path) -> dict:
    return json.loads((bundle / METADATA_FILE).read_text())


def _put_meta(bundle: Path, meta: dict) -> None:
    (bundle / METADATA_FILE).write_text(json.dumps(meta))


def test_valid_bundle_loads(bundle: Path) -> None:
    loaded = load_bundle(bundle)
    assert loaded.arch == "test_tiny" and loaded.image_size == 128
    assert loaded.embedding_shape == (1, 256, 8, 8)
    assert loaded.path("encoder") == bundle.resolve() / "encoder.onnx"
    assert not loaded.has("decoder_sam")
    with pytest.raises(BundleError, match="no 'decoder_sam' file"):
        loaded.path("decoder_sam")


def test_missing_folder_and_metadata(tmp_path: Path, bundle: Path) -> None:
    with pytest.raises(BundleError, match="does not exist.*edgesam export"):
        load_bundle(tmp_path / "nope")
    with pytest.raises(BundleError, match="not a folder"):
        load_bundle(bundle / "encoder.onnx")
    (bundle / METADATA_FILE).unlink()
    with pytest.raises(BundleError, match="no edgesam.json"):
        load_bundle(bundle)


def test_missing_file(bundle: Path) -> None:
    (bundle / "decoder.onnx").unlink()
    with pytest.raises(BundleError, match="decoder.onnx is missing.*Copy the whole bundle folder"):
        load_bundle(bundle)


@pytest.mark.parametrize("how", ["append", "flip", "truncate"])
def test_altered_file_is_a_sha256_mismatch(bundle: Path, how: str) -> None:
    path = bundle / "encoder.onnx"
    data = bytearray(path.read_bytes())
    if how == "append":
        data += b"\0"
    elif how == "flip":
        data[len(data) // 2] ^= 0x01
    else:
        data = data[: len(data) // 2]
    path.write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match="encoder.onnx .*altered or corrupted: sha256"):
        load_bundle(bundle)


def test_corrupt_metadata(bundle: Path) -> None:
    (bundle / METADATA_FILE).write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(bundle)
    (bundle / METADATA_FILE).write_text("[1, 2]")
    with pytest.raises(BundleError, match="JSON object"):
        load_bundle(bundle)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("arch", None, "missing key.*arch"),
        ("files", None, "missing key.*files"),
        ("image_size", "1024", "'image_size' must be a positive multiple of 16"),
        ("image_size", 100, "'image_size' must be a positive multiple of 16"),
        ("pixel_std", [1.0, 0.0, 1.0], "'pixel_std' must be a list of 3 numbers"),
        ("pixel_mean", [1.0, 2.0], "'pixel_mean' must be a list of 3 numbers"),
        ("precision", "fp64", "'precision' must be one of"),
        ("format_version", 99, "'format_version' must be 1"),
        ("format", "something-else", "'format' must be 'edgesam-bundle'"),
        ("opset", 9, "'opset' must be an integer >= 11"),
        ("models", {"encoder": "encoder.onnx"}, "'models' must be an object with \"encoder\" and \"decoder\""),
        ("models", {"encoder": "encoder.onnx", "decoder": "other.onnx"}, "without a sha256 in 'files'"),
    ],
)
def test_bad_metadata(bundle: Path, key: str, value: object, message: str) -> None:
    meta = _meta(bundle)
    if value is None:
        del meta[key]
    else:
        meta[key] = value
    _put_meta(bundle, meta)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle)


def test_listed_path_outside_folder(bundle: Path, tmp_path: Path) -> None:
    (tmp_path / "outside.onnx").write_bytes((bundle / "decoder.onnx").read_bytes())
    meta = _meta(bundle)
    meta["files"]["../outside.onnx"] = meta["files"]["decoder.onnx"]
    meta["models"]["decoder"] = "../outside.onnx"
    _put_meta(bundle, meta)
    with pytest.raises(BundleIntegrityError, match="outside the bundle folder"):
        load_bundle(bundle)


def _with_external_decoder(bundle: Path, location: str, data_path: Path) -> None:
    """Re-save decoder.onnx with its weights in ``data_path`` referenced as ``location``."""
    model = onnx.load(str(bundle / "decoder.onnx"))
    onnx.save_model(model, str(bundle / "decoder.onnx"), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="decoder.data", size_threshold=0)  # fmt: skip
    if data_path != bundle / "decoder.data":
        shutil.move(bundle / "decoder.data", data_path)
    model = onnx.load(str(bundle / "decoder.onnx"), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save_model(model, str(bundle / "decoder.onnx"))
    meta = _meta(bundle)
    for name in ("files", "format", "format_version"):
        meta.pop(name)
    write_metadata(bundle, meta)  # consistent hashes: only the external reference is wrong


def test_external_data_outside_folder(bundle: Path, tmp_path: Path) -> None:
    _with_external_decoder(bundle, "../stolen.data", tmp_path / "stolen.data")
    assert set(external_data_locations(bundle / "decoder.onnx")) == {"../stolen.data"}
    with pytest.raises(BundleIntegrityError, match="'../stolen.data', which is outside the bundle folder"):
        load_bundle(bundle)


def test_external_data_absolute_path(bundle: Path, tmp_path: Path) -> None:
    target = tmp_path / "abs.data"
    _with_external_decoder(bundle, str(target), target)
    with pytest.raises(BundleIntegrityError, match="outside the bundle folder"):
        load_bundle(bundle)


def test_external_data_inside_is_fine_and_must_be_listed(bundle: Path) -> None:
    _with_external_decoder(bundle, "decoder.data", bundle / "decoder.data")
    load_bundle(bundle)
    meta = _meta(bundle)
    del meta["files"]["decoder.data"]
    _put_meta(bundle, meta)
    with pytest.raises(BundleIntegrityError, match="not listed"):
        load_bundle(bundle)


def test_external_refs_agree_with_onnx(bundle: Path) -> None:
    _with_external_decoder(bundle, "decoder.data", bundle / "decoder.data")
    model = onnx.load(str(bundle / "decoder.onnx"), load_external_data=False)
    expected = [e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"]
    assert external_data_locations(bundle / "decoder.onnx") == expected and expected
    (bundle / "junk.onnx").write_bytes(b"\xff" * 7)
    with pytest.raises(OnnxParseError):
        external_data_locations(bundle / "junk.onnx")


def test_symlink_escaping_the_folder(bundle: Path, tmp_path: Path) -> None:
    real = tmp_path / "elsewhere.onnx"
    shutil.move(bundle / "decoder.onnx", real)
    os.symlink(real, bundle / "decoder.onnx")
    with pytest.raises(BundleIntegrityError, match="outside the bundle folder"):
        load_bundle(bundle)


def test_loader_errors(bundle: Path) -> None:
    with pytest.raises(ValueError, match="torch backend does not run"):
        load_backend(bundle, "torch")
    with pytest.raises(ValueError, match="Unknown backend 'tflite'"):
        load_backend(bundle, "tflite")
    with pytest.raises(BundleError, match="does not exist"):
        load_backend(bundle / "missing", "onnxruntime")


@pytest.mark.skipif(available_backends()["tensorrt"] is True, reason="tensorrt is installed here")
def test_backend_not_installed_names_the_extra(bundle: Path) -> None:
    with pytest.raises(BackendUnavailableError, match=r"pip install 'edgesam\[tensorrt\]'"):
        load_backend(bundle, "tensorrt")


def test_onnx_without_edgesam_names_is_refused(bundle: Path) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])  # fmt: skip
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(bundle / "decoder.onnx"))
    meta = _meta(bundle)
    for name in ("files", "format", "format_version"):
        meta.pop(name)
    write_metadata(bundle, meta)
    with pytest.raises(BundleError, match="edgesam expects inputs"):
        load_backend(bundle, "onnxruntime")
    assert np.isfinite(load_bundle(bundle).pixel_std).all()
