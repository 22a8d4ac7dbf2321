"""Export to ONNX bundles: graphs, dynamic axes, metadata, verification, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from bundle_fixtures import SIZE, small_model, tiny_model  # noqa: E402

from edgesam.export import Tolerance, export_bundle, load_bundle  # noqa: E402
from edgesam.bundle.format import METADATA_FILE, sha256_file  # noqa: E402
from edgesam.bundle.io_spec import DECODER_GRAPH  # noqa: E402
from edgesam.bundle.onnx_refs import external_data_locations  # noqa: E402
from edgesam.export.verify import ExportVerificationError  # noqa: E402


def _session(path: Path) -> "ort.InferenceSession":
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_bundle_files_and_metadata(vit_t_bundle: Path) -> None:
    meta = json.loads((vit_t_bundle / METADATA_FILE).read_text())
    assert meta["arch"] == "vit_t" and meta["image_size"] == SIZE
    assert meta["opset"] == 17 and meta["precision"] == "fp32" and meta["quantization"] is None
    assert meta["pixel_mean"] == pytest.approx([123.675, 116.28, 103.53])
    assert meta["pixel_std"] == pytest.approx([58.395, 57.12, 57.375])
    assert meta["mask_threshold"] == 0.0
    assert meta["decoder_graph"] == DECODER_GRAPH  # caches re-export bundles of older graphs
    assert set(meta["models"]) == {"encoder", "decoder", "decoder_sam", "golden"}
    on_disk = {p.name for p in vit_t_bundle.iterdir() if p.name != METADATA_FILE}
    assert set(meta["files"]) == on_disk
    for name, digest in meta["files"].items():
        assert sha256_file(vit_t_bundle / name) == digest
    ver = meta["verification"]
    assert ver["tolerance"] == {"rel_error": 1e-3, "mask_iou": 0.99}
    assert ver["measured"]["encoder_rel_error"] <= 1e-3
    assert ver["measured"]["end_to_end_mask_iou"] >= 0.99
    assert not [p for p in vit_t_bundle.parent.iterdir() if p.name.startswith(".")]  # no temp folders left
    for role in ("encoder", "decoder", "decoder_sam"):
        model = onnx.load(str(vit_t_bundle / meta["models"][role]))
        onnx.checker.check_model(model)
        assert {o.domain: o.version for o in model.opset_import}[""] == 17


def test_graph_signatures(vit_t_bundle: Path) -> None:
    grid = SIZE // 16
    enc = _session(vit_t_bundle / "encoder.onnx")
    assert [(i.name, i.shape) for i in enc.get_inputs()] == [("image", [1, 3, SIZE, SIZE])]
    assert [(o.name, o.shape) for o in enc.get_outputs()] == [("image_embeddings", [1, 256, grid, grid])]
    dec = _session(vit_t_bundle / "decoder.onnx")
    shapes = {i.name: i.shape for i in dec.get_inputs()}
    assert shapes["image_embeddings"] == [1, 256, grid, grid]
    assert shapes["point_coords"] == ["num_prompts", "num_points", 2]
    assert shapes["point_labels"] == ["num_prompts", "num_points"]
    assert shapes["mask_input"] == ["num_prompts", 1, 4 * grid, 4 * grid]
    assert shapes["has_mask_input"] == ["num_prompts"]
    assert [o.name for o in dec.get_outputs()] == ["iou_predictions", "low_res_masks"]
    sam = _session(vit_t_bundle / "decoder_sam.onnx")
    assert [i.name for i in sam.get_inputs()][-1] == "orig_im_size"
    assert [o.name for o in sam.get_outputs()] == ["masks", "iou_predictions", "low_res_masks"]
    ops = {n.op_type for n in onnx.load(str(vit_t_bundle / "decoder.onnx")).graph.node}
    assert not ops & {"OneHot", "If", "Loop", "Scan"}


@pytest.fixture(scope="module")
def model():
    return small_model()


@pytest.mark.parametrize(("b", "n"), [(3, 2), (1, 1), (6, 5)])
def test_decoder_dynamic_prompts_match_torch(vit_t_bundle: Path, model, b: int, n: int) -> None:
    grid = SIZE // 16
    rng = np.random.default_rng(b * 10 + n)
    feeds = {
        "image_embeddings": rng.normal(size=(1, 256, grid, grid)).astype(np.float32),
        "point_coords": rng.uniform(0, SIZE, (b, n, 2)).astype(np.float32),
        "point_labels": rng.integers(-1, 4, (b, n)).astype(np.float32),
        "mask_input": rng.normal(0, 4, (b, 1, 4 * grid, 4 * grid)).astype(np.float32),
        "has_mask_input": (np.arange(b) % 2).astype(np.float32),
    }
    iou, masks = _session(vit_t_bundle / "decoder.onnx").run(None, feeds)
    with torch.inference_mode():
        ref_iou, ref_masks = (t.numpy() for t in model.decode(*(torch.from_numpy(v) for v in feeds.values())))
    assert iou.shape == (b, 4) and masks.shape == (b, 4, 4 * grid, 4 * grid)
    np.testing.assert_allclose(iou, ref_iou, atol=1e-4)
    np.testing.assert_allclose(masks, ref_masks, atol=1e-3 * max(1.0, np.abs(ref_masks).max()))


def test_failed_verification_fails_export_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "never"
    with pytest.raises(ExportVerificationError, match="relative error"):
        export_bundle(tiny_model(), out, tolerance=Tolerance(rel_error=-1.0))
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_existing_folder_needs_overwrite_and_external_data(tmp_path: Path) -> None:
    model = tiny_model()
    plain = export_bundle(model, tmp_path / "plain")
    out = tmp_path / "b"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="overwrite"):
        export_bundle(model, out)
    assert (out / "keep.txt").exists()
    with pytest.raises(ValueError, match="not an edgesam bundle"):  # overwrite never deletes other things
        export_bundle(model, out, overwrite=True)
    assert (out / "keep.txt").exists()
    (out / "keep.txt").unlink()
    export_bundle(model, out, overwrite=True, external_data=True)  # an empty folder may be replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "plain"]
    # external data: one data file per graph, inside the folder, listed with its sha256
    meta = load_bundle(out).metadata
    for role in ("encoder", "decoder"):
        assert external_data_locations(out / f"{role}.onnx") and set(external_data_locations(out / f"{role}.onnx")) == {
            f"{role}.onnx.data"
        }
        assert f"{role}.onnx.data" in meta["files"]
    assert external_data_locations(plain / "encoder.onnx") == []
    # same graphs as the embedded-weights export
    x = np.random.default_rng(0).normal(size=(1, 3, 128, 128)).astype(np.float32)
    a = _session(out / "encoder.onnx").run(None, {"image": x})[0]
    b = _session(plain / "encoder.onnx").run(None, {"image": x})[0]
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_export_does_not_change_the_model(model) -> None:
    from edgesam.export.onnx_export import deployment_model

    before = {k: v.clone() for k, v in model.state_dict().items()}
    dep = deployment_model(model)
    assert dep is not model and not dep.training and not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_edge_sam_exports_fused_rep_vit(tmp_path: Path) -> None:
    from edgesam.export.onnx_export import deployment_model
    from edgesam.models import build_sam
    from edgesam.models.layers import Conv2dBN

    torch.manual_seed(1)
    model = build_sam("edge_sam", image_size=128)
    dep = deployment_model(model)
    assert any(isinstance(m, Conv2dBN) for m in model.modules())
    assert not any(isinstance(m, Conv2dBN) for m in dep.modules())
    out = export_bundle(model, tmp_path / "edge")
    assert load_bundle(out).arch == "edge_sam"


def test_export_command_from_checkpoint(tmp_path: Path, model, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from edgesam.commands import export as export_command

    ckpt = tmp_path / "vit_t_256.pt"
    torch.save(model.state_dict(), ckpt)
    parser = argparse.ArgumentParser()
    export_command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["export", str(ckpt), "-o", str(tmp_path / "cli"), "--arch", "vit_t",
                              "--image-size", str(SIZE), "--sam-decoder"])  # fmt: skip
    assert args.func(args) == 0
    assert "verified against torch" in capsys.readouterr().out
    loaded = load_bundle(tmp_path / "cli")
    assert loaded.arch == "vit_t" and loaded.has("decoder_sam")
