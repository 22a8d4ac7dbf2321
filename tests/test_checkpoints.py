"""Checkpoint reading, architecture detection, strict loading and the zoo."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from edgesam import list_models, load_model
from edgesam.models import build_sam
from edgesam.models.checkpoints import detect_arch, read_state_dict
from edgesam.bundle.catalogue import ZOO, resolve


@pytest.fixture(scope="module")
def small_vit_b() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return build_sam("vit_b", image_size=256).state_dict()


def _same(a: torch.nn.Module, state: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a.state_dict()[k], v) for k, v in state.items())


@pytest.mark.parametrize("wrap", ["plain", "model", "state_dict", "module"])
def test_published_wrappers_load(tmp_path: Path, small_vit_b: dict, wrap: str) -> None:
    obj: object = small_vit_b
    if wrap == "module":
        obj = {f"module.{k}": v for k, v in small_vit_b.items()}
    elif wrap != "plain":
        obj = {wrap: small_vit_b, "epoch": torch.tensor(3)}
    torch.save(obj, tmp_path / "ckpt.pth")
    model = load_model(tmp_path / "ckpt.pth", image_size=256)
    assert model.arch == "vit_b" and model.image_size == 256
    assert _same(model, small_vit_b)


def test_safetensors_records_its_own_size_and_arch(tmp_path: Path, small_vit_b: dict) -> None:
    save_file({k: v.half() for k, v in small_vit_b.items()}, tmp_path / "m.safetensors",
              metadata={"arch": "vit_b", "image_size": "256"})
    model = load_model(tmp_path / "m.safetensors")
    assert model.image_size == 256
    assert next(model.parameters()).dtype == torch.float32


def test_unexpected_missing_and_misshaped_keys_are_listed(tmp_path: Path, small_vit_b: dict) -> None:
    state = dict(small_vit_b)
    state.pop("mask_decoder.iou_token.weight")
    state["image_encoder.extra.weight"] = torch.zeros(2)
    state["mask_decoder.mask_tokens.weight"] = torch.zeros(5, 256)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError) as info:
        load_model(tmp_path / "bad.pth", arch="vit_b", image_size=256)
    message = str(info.value)
    assert "missing: mask_decoder.iou_token.weight" in message
    assert "unexpected: image_encoder.extra.weight" in message
    assert "mask_decoder.mask_tokens.weight (5, 256) != (4, 256)" in message


def test_checkpoint_of_another_arch_is_refused(tmp_path: Path, small_vit_b: dict) -> None:
    torch.save(small_vit_b, tmp_path / "b.pth")
    with pytest.raises(ValueError, match="is a 'vit_b' checkpoint, not 'vit_t'"):
        load_model(tmp_path / "b.pth", arch="vit_t", image_size=256)


def test_tinyvit_classifier_keys_are_tolerated_but_nothing_else(tmp_path: Path) -> None:
    state = build_sam("vit_t", image_size=256).state_dict()
    state["image_encoder.norm_head.weight"] = torch.ones(320)
    state["image_encoder.head.weight"] = torch.zeros(1000, 320)
    torch.save({"model": state}, tmp_path / "mobile.pt")
    assert load_model(tmp_path / "mobile.pt", image_size=256).arch == "vit_t"
    state["image_encoder.other_head.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "mobile2.pt")
    with pytest.raises(ValueError, match="image_encoder.other_head.weight"):
        load_model(tmp_path / "mobile2.pt", image_size=256)


def test_loaded_model_computes_what_the_built_one_does(tmp_path: Path) -> None:
    """load_model skips random init (meta device); derived buffers are recomputed, none is left on meta."""
    torch.manual_seed(0)
    built = build_sam("vit_t", image_size=256)
    with torch.no_grad():
        for p in built.image_encoder.parameters():
            p.add_(torch.randn_like(p) * 0.02)  # biases away from zero: attention bias indexing matters
    torch.save(built.state_dict(), tmp_path / "t.pth")
    loaded = load_model(tmp_path / "t.pth", image_size=256)
    assert not [t for t in (*loaded.parameters(), *loaded.buffers()) if t.is_meta]
    for name, buf in built.named_buffers():
        assert torch.equal(loaded.get_buffer(name), buf), name
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        assert torch.equal(loaded.encode(x), built.encode(x))


def test_truncated_and_foreign_files_are_refused(tmp_path: Path, small_vit_b: dict) -> None:
    torch.save(small_vit_b, tmp_path / "full.pth")
    data = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "trunc.pth").write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="truncated"):
        load_model(tmp_path / "trunc.pth")
    (tmp_path / "notes.pth").write_text("hello")
    with pytest.raises(ValueError, match=r"notes.pth is a text file \(starts with 'hello'\), not a checkpoint; expected"):
        load_model(tmp_path / "notes.pth")
    (tmp_path / "notes.txt").write_text("a to-do list\nsecond line\n")
    with pytest.raises(ValueError, match=r"notes.txt is a text file \(starts with 'a to-do list'\).*\.pt/\.pth.*\.safetensors"):
        load_model(tmp_path / "notes.txt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="empty file, not a checkpoint"):
        load_model(tmp_path / "empty.pt")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "absent.pth")


def test_pickled_code_is_not_executed(tmp_path: Path) -> None:
    torch.save({"model": {"x": torch.zeros(1)}, "fn": Path("/etc")}, tmp_path / "evil.pth")
    with pytest.raises(ValueError, match="weights-only"):
        read_state_dict(tmp_path / "evil.pth")


def test_detect_arch_names_closest_match(small_vit_b: dict) -> None:
    assert detect_arch(small_vit_b, image_size=256) == "vit_b"
    with pytest.raises(ValueError, match="closest is 'vit_b'"):
        detect_arch({**small_vit_b, "stray": torch.zeros(1)}, image_size=256)
    with pytest.raises(ValueError, match="not a SAM-family checkpoint"):
        detect_arch({"fc.weight": torch.zeros(2, 2)})


def test_zoo_offline_error_says_where_to_put_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESAM_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        resolve("mobile_sam", download=False)
    assert str(tmp_path / "checkpoints" / "mobile_sam.pt") in str(info.value)
    assert ZOO["mobile_sam"].url in str(info.value)
    assert "as MODEL on the command line" in str(info.value) and "load_model(PATH)" in str(info.value)  # CLI and Python
    cached = tmp_path / "checkpoints" / "mobile_sam.pt"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert resolve("mobile_sam", download=False) == cached
    with pytest.raises(ValueError, match="unknown model name"):
        resolve("sam_vit_z")


def test_list_models_names_the_official_files() -> None:
    assert {"sam_vit_h", "sam_vit_l", "sam_vit_b", "mobile_sam", "edge_sam"} <= set(list_models())
