"""``edgesam.load_predictor``: one factory for a model name, a checkpoint file or a bundle folder,
on real checkpoints, real bundles and real runtime sessions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edgesam
from edgesam.bundle import METADATA_FILE
from edgesam.loading import load_predictor, resolve_model

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from bundle_fixtures import copy_bundle, scene, tiny_model  # noqa: E402
from torch_blocker import BLOCK_TORCH  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from edgesam.export import export_bundle

    return export_bundle(tiny_model(), tmp_path_factory.mktemp("loading") / "tiny")


@pytest.fixture(scope="module")
def demo_checkpoint() -> Path:
    from edgesam.bundle.catalogue import embedded_models

    return embedded_models()["edgesam-demo"]


def test_what_a_model_argument_names(bundle: Path, demo_checkpoint: Path, tmp_path: Path) -> None:
    assert resolve_model(bundle).kind == "bundle" and resolve_model(bundle / METADATA_FILE).path == str(bundle)
    assert resolve_model(demo_checkpoint).kind == "checkpoint"
    assert resolve_model("edgesam-demo").kind == "checkpoint"
    with pytest.raises(FileNotFoundError, match="no such checkpoint file or bundle folder"):
        resolve_model(tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="without edgesam.json"):
        resolve_model(tmp_path)
    (tmp_path / "notes.txt").write_text("remember the milk\n")
    assert resolve_model(tmp_path / "notes.txt").kind == "checkpoint"  # judged by its bytes when read:
    with pytest.raises(ValueError, match="notes.txt is a text file"):
        load_predictor(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match="unknown model 'mobilesam'.*mobile_sam"):
        resolve_model("mobilesam")
    with pytest.raises(TypeError, match="got int"):
        resolve_model(3)  # type: ignore[arg-type]


def test_a_bundle_runs_on_onnxruntime_with_its_options(bundle: Path) -> None:
    image, boxes = scene()
    predictor = edgesam.load_predictor(bundle, threads=1, memory="low")
    assert predictor.backend.name == "onnxruntime" and predictor.backend.memory == "low"
    assert predictor.backend._encoder.get_session_options().intra_op_num_threads == 1
    reference = edgesam.SamPredictor.from_bundle(bundle)
    for p in (predictor, reference):
        p.set_image(image)
    a = predictor.predict(box=boxes[0], multimask_output=False)
    b = reference.predict(box=boxes[0], multimask_output=False)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1], rtol=1e-5, atol=1e-6)


def test_a_bundle_refuses_what_its_backend_does_not_take(bundle: Path) -> None:
    with pytest.raises(ValueError, match="arch= applies to checkpoints"):
        load_predictor(bundle, arch="vit_t")
    with pytest.raises(ValueError, match="providers=, not device="):
        load_predictor(bundle, device="cuda")
    with pytest.raises(ValueError, match="torch backend does not run"):
        load_predictor(bundle, backend="torch")
    with pytest.raises(ValueError, match="threads must be an integer >= 1"):
        load_predictor(bundle, threads=0)


def test_a_deployed_bundle_runs_its_recorded_backend_with_threads(bundle: Path, tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    deployed = copy_bundle(bundle, tmp_path / "deployed")
    meta = json.loads((deployed / METADATA_FILE).read_text())
    meta["deploy"] = {"backend": "openvino", "precision": "fp32",
                      "options": {"precision": "fp32", "config": {"INFERENCE_NUM_THREADS": 2, "NUM_STREAMS": 1}}}
    (deployed / METADATA_FILE).write_text(json.dumps(meta))
    predictor = load_predictor(deployed, threads=1)  # threads asked for win over the recorded ones
    assert predictor.backend.name == "openvino" and predictor.backend.precision == "fp32"
    encoder = predictor.backend._compiled["encoder"]
    assert int(encoder.get_property("INFERENCE_NUM_THREADS")) == 1 and int(encoder.get_property("NUM_STREAMS")) == 1
    assert int(load_predictor(deployed).backend._compiled["encoder"].get_property("INFERENCE_NUM_THREADS")) == 2
    assert load_predictor(deployed, backend="onnxruntime").backend.name == "onnxruntime"
    # a config given to from_bundle is merged key by key with the recorded one (threads 1 stays)
    meta["deploy"]["options"]["config"]["INFERENCE_NUM_THREADS"] = 1
    (deployed / METADATA_FILE).write_text(json.dumps(meta))
    other = edgesam.SamPredictor.from_bundle(deployed, config={"NUM_STREAMS": 1}).backend._compiled["encoder"]
    assert int(other.get_property("INFERENCE_NUM_THREADS")) == 1


def test_a_checkpoint_runs_on_torch(demo_checkpoint: Path, tmp_path: Path) -> None:
    before = torch.get_num_threads()
    try:
        predictor = load_predictor(demo_checkpoint, threads=1, precision="bf16")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert predictor.backend.name == "torch" and predictor.backend.precision == "bf16"
    assert load_predictor("edgesam-demo", arch="edgesam_demo").backend.precision == "fp32"
    with pytest.raises(ValueError, match="runs on torch; to run it on onnxruntime, export it first: `edgesam export"):
        load_predictor(demo_checkpoint, backend="onnxruntime")
    with pytest.raises(ValueError, match="memory= applies to bundle backends"):
        load_predictor(demo_checkpoint, memory="low")
    with pytest.raises(ValueError, match="is a 'edgesam_demo' checkpoint, not 'vit_t'|does not match the 'vit_t'"):
        load_predictor(demo_checkpoint, arch="vit_t")
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="broken.pth"):
        load_predictor(bad)


def test_open_predictor_is_the_factory(bundle: Path, demo_checkpoint: Path) -> None:
    from edgesam.bench.coldstart import open_predictor

    p = open_predictor({"backend": "onnxruntime", "bundle": str(bundle), "threads": 1,
                        "options": {"intra_op_threads": 2}})  # explicit options win over threads
    assert p.backend._encoder.get_session_options().intra_op_num_threads == 2
    t = open_predictor({"backend": "torch", "checkpoint": str(demo_checkpoint), "options": {"dtype": "bfloat16"}})
    assert t.backend.precision == "bf16"


SCRIPT = BLOCK_TORCH + r"""
import numpy as np
import edgesam
predictor = edgesam.load_predictor(sys.argv[1], threads=1)
predictor.set_image(np.full((48, 64, 3), 90, np.uint8))
masks, scores, _ = predictor.predict(point_coords=np.array([[30.0, 20.0]]), point_labels=np.array([1]))
assert "torch" not in sys.modules
print("OK", masks.shape)
"""


def test_a_bundle_loads_without_torch(bundle: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(bundle)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("OK (3, 48, 64)"), proc.stdout + proc.stderr
