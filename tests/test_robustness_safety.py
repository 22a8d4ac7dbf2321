"""Loading untrusted files: no pickled code runs, bundles are verified before a runtime sees them.

Complements test_checkpoints.py (weights-only refusal of non-tensor objects) and
test_export_bundle_validation.py (``load_bundle``'s checks): here a pickle that *executes code*
on load is refused through every entry point without its side effect happening, and every
installed bundle runtime refuses a tampered bundle through ``SamPredictor.from_bundle``
before parsing it.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from edgesam.export import BundleIntegrityError  # noqa: E402
from edgesam.bundle.format import METADATA_FILE, write_metadata  # noqa: E402
from edgesam.predictor import SamPredictor  # noqa: E402
from edgesam.runtimes import available_backends  # noqa: E402


class _CreatesFile:
    """Unpickling this calls ``open(marker, "w")``: code execution with a visible side effect."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (open, (self.marker, "w"))


def _malicious_checkpoints(tmp_path: Path, marker: Path) -> list[Path]:
    """The payload hidden in the shapes a checkpoint comes in."""
    from bundle_fixtures import tiny_model

    state = tiny_model().state_dict()
    zipped = tmp_path / "wrapped.pth"
    torch.save({"model": state, "extra": _CreatesFile(marker)}, zipped)
    plain = tmp_path / "plain.pt"
    torch.save({**state, "image_encoder.evil": _CreatesFile(marker)}, plain)
    legacy = tmp_path / "legacy.bin"
    with open(legacy, "wb") as fh:
        pickle.dump({"model": _CreatesFile(marker)}, fh)
    disguised = tmp_path / "disguised.safetensors"
    disguised.write_bytes(zipped.read_bytes())
    return [zipped, plain, legacy, disguised]


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_pickled_code_never_runs_on_any_entry_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import edgesam
    from edgesam.cli import main
    from edgesam.export import export_bundle

    marker = tmp_path / "pwned"
    for path in _malicious_checkpoints(tmp_path, marker):
        with pytest.raises(ValueError, match="could not read checkpoint"):
            edgesam.load_model(path)
        with pytest.raises(ValueError, match="could not read checkpoint"):
            export_bundle(path, tmp_path / f"bundle-{path.stem}")
        image = tmp_path / "img.png"
        from edgesam.io import write_image

        write_image(image, np.zeros((16, 16, 3), np.uint8))
        assert main(["segment", str(path), str(image), "--point", "4,4", "-o",
                     str(tmp_path / "m.png")]) == 2  # fmt: skip
        assert "could not read checkpoint" in capsys.readouterr().err
        assert not marker.exists(), f"loading {path.name} executed pickled code"
    # control: the payload is live -- an unsafe load runs it
    torch.load(tmp_path / "wrapped.pth", weights_only=False)
    assert marker.exists()


BUNDLE_BACKENDS = [b for b in ("onnxruntime", "openvino") if available_backends().get(b) is True]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnx")
    from bundle_fixtures import tiny_model

    from edgesam.export import export_bundle

    return export_bundle(tiny_model(), tmp_path_factory.mktemp("safety") / "tiny")


@pytest.fixture
def bundle(pristine: Path, tmp_path: Path) -> Path:
    from bundle_fixtures import copy_bundle

    return copy_bundle(pristine, tmp_path / "copy")


@pytest.mark.skipif(not BUNDLE_BACKENDS, reason="no bundle runtime installed")
@pytest.mark.parametrize("backend", BUNDLE_BACKENDS)
@pytest.mark.parametrize("role", ["encoder", "decoder"])
def test_tampered_model_is_refused_before_the_runtime_parses_it(bundle: Path, backend: str, role: str) -> None:
    assert SamPredictor.from_bundle(bundle, backend=backend).backend.image_size == 128
    # garbage in place of the model: a runtime reading it would fail with its own parse error
    (bundle / f"{role}.onnx").write_bytes(b"\x08\x07garbage" * 100)
    with pytest.raises(BundleIntegrityError, match=f"{role}.onnx .*sha256"):
        SamPredictor.from_bundle(bundle, backend=backend)


@pytest.mark.skipif(not BUNDLE_BACKENDS, reason="no bundle runtime installed")
@pytest.mark.parametrize("backend", BUNDLE_BACKENDS)
def test_swapped_valid_model_is_refused(bundle: Path, backend: str) -> None:
    """A well-formed but different graph (here: the encoder saved as the decoder) is caught by its hash."""
    (bundle / "decoder.onnx").write_bytes((bundle / "encoder.onnx").read_bytes())
    with pytest.raises(BundleIntegrityError, match="decoder.onnx .*altered or corrupted"):
        SamPredictor.from_bundle(bundle, backend=backend)


@pytest.mark.skipif(not BUNDLE_BACKENDS, reason="no bundle runtime installed")
@pytest.mark.parametrize("backend", BUNDLE_BACKENDS)
def test_external_data_outside_the_bundle_is_refused_by_every_runtime(bundle: Path, tmp_path: Path,
                                                                      backend: str) -> None:  # fmt: skip
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(bundle / "decoder.onnx"))
    outside = tmp_path / "outside"
    outside.mkdir()
    onnx.save_model(model, str(outside / "decoder.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.data", size_threshold=0)  # fmt: skip
    # the bundle's decoder now points at ../outside/weights.data; its metadata hashes are consistent
    relinked = onnx.load(str(outside / "decoder.onnx"), load_external_data=False)
    for tensor in relinked.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../outside/weights.data"
    onnx.save_model(relinked, str(bundle / "decoder.onnx"))
    meta = json.loads((bundle / METADATA_FILE).read_text())
    for key in ("files", "format", "format_version"):
        meta.pop(key)
    write_metadata(bundle, meta)
    with pytest.raises(BundleIntegrityError, match="outside the bundle folder"):
        SamPredictor.from_bundle(bundle, backend=backend)
