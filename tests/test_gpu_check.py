"""benchmarks/gpu_check.py: argument parsing, the CPU reference path on a tiny model, the report.

The GPU figures themselves need a CUDA machine; here the same code runs with ``--device cpu
--tiny`` (torch on the CPU against torch on the CPU), which checks everything but the device.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    return module


def test_arguments(gpu_check, capsys: pytest.CaptureFixture[str]) -> None:
    args = gpu_check.parse_args(["--out", "x"])
    assert args.archs == ["vit_t", "edge_sam", "vit_h"] and args.dtypes == ["fp32", "fp16", "bf16"]
    assert args.device == "cuda" and args.budget_s < 480  # sections start within 8 minutes
    assert gpu_check.parse_args(["--out", "x", "--tiny", "--device", "cpu"]).archs == ["tiny"]
    with pytest.raises(SystemExit) as info:
        gpu_check.parse_args(["--out", "x", "--dtypes", "fp32,int4"])
    assert info.value.code == 2 and "unknown dtype(s) ['int4']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--out", "x", "--runs", "0"])


def test_tiny_cpu_run_writes_json_and_markdown(gpu_check, tmp_path: Path) -> None:
    args = gpu_check.parse_args(["--out", str(tmp_path / "report"), "--device", "cpu", "--tiny", "--runs", "1",
                                 "--dtypes", "fp32,bf16", "--distill-steps", "1", "--distill-batch", "1"])
    lines: list[str] = []
    report = gpu_check.run(args, log=lines.append)
    tiny = report["torch"]["tiny"]
    fp32, bf16 = tiny["dtypes"]["fp32"], tiny["dtypes"]["bf16"]
    assert fp32["parity"]["embedding_cosine"] == pytest.approx(1.0, abs=1e-6)  # CPU fp32 against itself
    assert fp32["parity"]["mask_iou_mean"] == 1.0
    assert 0.99 < bf16["parity"]["embedding_cosine"] < 1.0  # bf16 really ran, and is close
    assert bf16["encoder"]["p50_ms"] > 0 and bf16["decoder_1_click"]["runs"] == 1
    distill = report["distill"]["tiny"]
    assert distill["finite"] and distill["images_per_s"] > 0 and distill["amp"] == "bfloat16"
    if importlib.util.find_spec("tensorrt") is None:
        assert report["tensorrt_status"].startswith("tensorrt is not importable here")
        assert "tensorrt" not in report
    json_path, md_path = gpu_check.write_report(report, args.out)
    again = json.loads(json_path.read_text())
    assert again["torch"]["tiny"]["dtypes"]["bf16"]["parity"] == bf16["parity"]
    md = md_path.read_text()
    assert "| tiny | bf16 |" in md and "| tiny | 128 | 1 | bfloat16 |" in md
    assert report["tensorrt_status"] in md
    assert sorted(p.name for p in json_path.parent.iterdir()) == ["gpu_check.json", "gpu_check.md"]


def test_budget_skips_sections_and_says_so(gpu_check, tmp_path: Path) -> None:
    args = gpu_check.parse_args(["--out", str(tmp_path), "--device", "cpu", "--tiny", "--budget-s", "0",
                                 "--no-tensorrt"])  # fmt: skip
    report = gpu_check.run(args, log=lambda _m: None)
    assert report["skipped"] == ["torch tiny", "distill tiny"] and report["torch"] == {}
    assert "not requested" in report["tensorrt_status"]
    _, md = gpu_check.write_report(report, tmp_path)
    assert "- torch tiny" in md.read_text()


def test_cuda_requested_without_a_gpu_is_a_clear_error(gpu_check, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible")
    assert gpu_check.main(["--out", str(tmp_path)]) == 2
    assert "torch sees no CUDA GPU" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
