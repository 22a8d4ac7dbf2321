"""The bottom layer ``edgesam.bundle``: old import paths still work, names resolve above ``models``."""

from __future__ import annotations

import importlib

import pytest

import edgesam
from edgesam import bundle
from edgesam.bundle import catalogue, format, golden, io_spec, onnx_refs


@pytest.mark.parametrize(
    ("old", "new"),
    [("edgesam.export.bundle", format), ("edgesam.export.io_spec", io_spec),
     ("edgesam.export.onnx_refs", onnx_refs), ("edgesam.zoo", catalogue),
     ("edgesam.distillation.synthetic", "edgesam.scenes"), ("edgesam.quantization.prompt_sampling", None)],
)  # fmt: skip
def test_old_module_paths_reexport_the_same_objects(old: str, new) -> None:
    shim = importlib.import_module(old)
    if new is None:  # a part of a module: the old one's names only
        new = importlib.import_module("edgesam.prompt_geometry")
        assert set(shim.__all__) < set(new.__all__)
        for name in shim.__all__:
            assert getattr(shim, name) is getattr(new, name), name
        return
    new = importlib.import_module(new) if isinstance(new, str) else new
    assert shim.__all__ == new.__all__
    for name in new.__all__:
        assert getattr(shim, name) is getattr(new, name), name


def test_catalogue_finds_the_embedded_model_after_the_move() -> None:
    embedded = catalogue.embedded_models()
    assert "edgesam-demo" in embedded and embedded["edgesam-demo"].is_file()
    assert catalogue.resolve("edgesam-demo") == embedded["edgesam-demo"]
    assert "edgesam-demo" in edgesam.list_models() and "mobile_sam" in bundle.list_models()


def test_metadata_and_golden_names_are_one_constant() -> None:
    assert bundle.METADATA_FILE == "edgesam.json" and golden.GOLDEN_FILE == bundle.GOLDEN_FILE == "golden.npz"
    with pytest.raises(ValueError, match="has_mask_input"):
        golden.save_golden("unused.npz", {"image": 0})


def test_models_layer_reads_files_and_names_resolve_above_it() -> None:
    pytest.importorskip("torch")
    from edgesam.models.checkpoints import load_model as load_file

    with pytest.raises(FileNotFoundError, match=r"edgesam\.load_model\('edgesam-demo'\)"):
        load_file("edgesam-demo")
    by_resolver = load_file("edgesam-demo", resolve=catalogue.resolve)
    by_name = edgesam.load_model("edgesam-demo")
    assert by_resolver.image_size == by_name.image_size
    for (k, a), (_, b) in zip(by_resolver.state_dict().items(), by_name.state_dict().items()):
        assert a.equal(b), k
