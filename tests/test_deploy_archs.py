"""``edgesam deploy`` on official-layout checkpoints of both lightweight architectures (1024 px)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from layouts import load_layout  # noqa: E402

from edgesam.bundle.format import METADATA_FILE  # noqa: E402


def _official_checkpoint(arch: str, path: Path) -> Path:
    """Seeded random weights saved as the official file is: a plain state dict with every key
    of the published layout (TinyViT's unused classifier head included)."""
    from edgesam.models import build_sam

    layout = load_layout(arch)
    torch.manual_seed(0)
    state = {k: v.detach().clone() for k, v in build_sam(arch).state_dict().items()}
    gen = torch.Generator().manual_seed(1)
    for key, (shape, _dtype) in layout.items():
        state.setdefault(key, 0.02 * torch.randn(shape, generator=gen))
    assert {k: list(v.shape) for k, v in state.items()} == {k: list(s) for k, (s, _) in layout.items()}
    torch.save(state, path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["vit_t", "edge_sam"])
def test_deploy_official_layout_checkpoint(arch: str, tmp_path: Path) -> None:
    from edgesam.deploy import deploy
    from edgesam.predictor import SamPredictor

    checkpoint = _official_checkpoint(arch, tmp_path / f"{arch}.pth")
    result = deploy(checkpoint, tmp_path / "out", candidates=["onnxruntime-fp32"], heldout=1, prompts_per_image=1,
                    quick=True, threads=2, work_dir=tmp_path / "work", min_mask_iou=0.9, log=lambda _m: None,
                    show_progress=False)  # fmt: skip
    record = json.loads((result.path / METADATA_FILE).read_text())
    assert record["arch"] == arch and record["image_size"] == 1024
    assert record["deploy"]["candidate"] == "onnxruntime-fp32" and record["deploy"]["arch"] == arch
    assert result.chosen.fidelity["mask_iou_mean"] >= 0.99  # fp32 ONNX Runtime vs fp32 torch
    assert SamPredictor.from_bundle(result.path).backend.name == "onnxruntime"
