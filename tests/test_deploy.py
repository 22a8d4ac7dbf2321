"""``edgesam deploy`` end to end on the embedded 128 px model, plus the choice and planning rules."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgesam.bundle.format import METADATA_FILE
from edgesam.deploy import CandidateResult, choose, plan_candidates

# ------------------------------------------------------------------ unit: planning and choice


def test_plan_skips_what_this_machine_cannot_run() -> None:
    available = {"torch": True, "onnxruntime": True, "openvino": "missing package(s) openvino", "tensorrt": True}
    todo, skipped = plan_candidates(None, available=available, cuda="no CUDA device", isa=["avx2"])
    assert [c.name for c in todo] == ["torch-fp32", "onnxruntime-fp32", "onnxruntime-int8"]
    reasons = {c.name: r for c, r in skipped}
    assert "openvino" in reasons["openvino-bf16"] and "CUDA" in reasons["tensorrt-fp16"]
    todo, skipped = plan_candidates(["openvino"], available={**available, "openvino": True}, cuda=True, isa=["avx2"])
    assert [c.name for c in todo] == ["openvino-fp32", "openvino-int8", "openvino-int8-nncf"]
    no_bf16 = dict((c.name, r) for c, r in skipped)
    assert "bf16" in no_bf16["openvino-bf16"] and "bf16" in no_bf16["openvino-int8-bf16"]
    todo, _ = plan_candidates(None, available={**available, "openvino": True}, cuda=True, isa=[],
                              names=["openvino-fp32", "tensorrt-fp16"])  # fmt: skip
    assert [c.name for c in todo] == ["openvino-fp32", "tensorrt-fp16"]
    with pytest.raises(ValueError, match="unknown backend"):
        plan_candidates(["onnx"], available=available, cuda=True, isa=[])
    with pytest.raises(ValueError, match="unknown candidate"):
        plan_candidates(None, available=available, cuda=True, isa=[], names=["ov-fp32"])


def _measured(name: str, backend: str, p50: float, iou: float, rss: float | None = None) -> CandidateResult:
    stats = {"p50_ms": p50, "p90_ms": p50 * 1.1}
    return CandidateResult(name, backend, "fp32", status="passed", latency_ms={"first_mask": stats},
                           fidelity={"mask_iou_mean": iou}, rss_mb=rss)  # fmt: skip


def test_choose_takes_the_fastest_that_passes_every_requirement() -> None:
    results = [
        _measured("slow", "onnxruntime", 100.0, 1.0),
        _measured("fast-but-wrong", "openvino", 10.0, 0.5),
        _measured("fast-but-big", "openvino", 20.0, 0.99, rss=900.0),
        _measured("torch", "torch", 5.0, 1.0),
        _measured("good", "openvino", 40.0, 0.98, rss=None),
        CandidateResult("never-ran", "tensorrt", "fp16", reason="needs a CUDA GPU"),
    ]
    chosen = choose(results, min_mask_iou=0.97, max_rss_mb=500.0)
    assert chosen is not None and chosen.name == "good" and chosen.status == "chosen"
    by = {r.name: r for r in results}
    assert by["fast-but-wrong"].status == "rejected" and "0.5000 < 0.97" in by["fast-but-wrong"].reason
    assert by["fast-but-big"].status == "rejected" and "900 MiB" in by["fast-but-big"].reason
    assert by["torch"].status == "passed" and "comparison" in by["torch"].reason
    assert by["slow"].status == "passed" and "good" in by["slow"].reason
    assert by["never-ran"].status == "skipped"
    assert choose([_measured("x", "openvino", 1.0, 0.1)], min_mask_iou=0.97) is None


# ------------------------------------------------------------------ end to end
pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory):
    from edgesam.deploy import deploy

    root = tmp_path_factory.mktemp("deploy")
    lines: list[str] = []
    result = deploy("edgesam-demo", root / "out", backends=["onnxruntime", "openvino"],
                    candidates=["onnxruntime-fp32", "openvino-fp32", "openvino-bf16", "openvino-int8"],
                    heldout=1, prompts_per_image=4, quick=True, budget_min=10, threads=1,
                    work_dir=root / "work", results_dir=root / "history", log=lines.append,
                    show_progress=False)  # fmt: skip
    return result, root, lines


def test_deploy_writes_a_bundle_recording_the_choice(deployed) -> None:
    from edgesam.export import load_bundle

    result, root, lines = deployed
    assert result.path == root / "out" and sorted(p.name for p in root.iterdir()) == ["history", "out", "work"]
    bundle = load_bundle(result.path)  # hashes of every file, report and plot included, check out
    assert {"deploy-report.md", "deploy.png"} <= set(bundle.metadata["files"])
    record = bundle.metadata["deploy"]
    for key in ("backend", "precision", "options", "threads", "device", "device_id", "latency_ms", "fidelity",
                "candidates", "min_mask_iou", "heldout", "budget_min", "load_avg_1m_start"):
        assert key in record, key
    assert record["candidate"] == result.chosen.name and record["threads"] == 1
    names = [c["name"] for c in record["candidates"]]
    assert names[:2] == ["onnxruntime-fp32", "openvino-fp32"]  # measured in plan order (bf16 needs bf16 units)
    assert set(names) <= {"onnxruntime-fp32", "openvino-fp32", "openvino-bf16", "openvino-int8"}
    for c in record["candidates"]:
        assert c["status"] in ("chosen", "passed", "rejected", "failed", "skipped") and "rss_mb" in c
        if c["status"] in ("chosen", "passed", "rejected") and c["latency_ms"]:
            assert set(c["latency_ms"]) == {"encoder", "first_mask", "decode_point"}
            assert c["fidelity"]["mask_iou_mean"] <= 1.0
            assert 20.0 < c["rss_mb"] < 4000.0  # measured in a fresh runtime-only process
    chosen = next(c for c in record["candidates"] if c["status"] == "chosen")
    assert chosen["fidelity"]["mask_iou_mean"] >= record["min_mask_iou"]
    passing = [c for c in record["candidates"] if c["status"] in ("chosen", "passed") and c["backend"] != "torch"]
    assert chosen["latency_ms"]["first_mask"]["p50_ms"] == min(c["latency_ms"]["first_mask"]["p50_ms"] for c in passing)
    if bundle.metadata.get("quantization"):
        assert record["precision"] == "int8"
    assert any("natural photo" in line or "synthetic scene" in line for line in lines)


def test_report_and_plot(deployed) -> None:
    result, _, _ = deployed
    report = (result.path / "deploy-report.md").read_text()
    assert f"**Chosen: {result.chosen.name}**" in report
    for c in result.candidates:
        assert f"| {c.name} |" in report
    png = (result.path / "deploy.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    assert matplotlib.image.imread(str(result.path / "deploy.png")).shape[:2] == (450, 700)


def test_from_bundle_runs_the_recorded_choice(deployed) -> None:
    from edgesam.predictor import SamPredictor

    result, _, _ = deployed
    predictor = SamPredictor.from_bundle(result.path)
    assert predictor.backend.name == result.chosen.backend
    assert getattr(predictor.backend, "precision", "fp32") == result.chosen.options.get("precision", "fp32")
    image = np.zeros((96, 128, 3), np.uint8)
    image[20:70, 30:90] = (230, 60, 40)
    predictor.set_image(image)
    masks, scores, _ = predictor.predict(point_coords=np.array([[60, 45]]), point_labels=np.array([1]))
    assert masks.shape == (3, 96, 128) and np.isfinite(scores).all()
    explicit = SamPredictor.from_bundle(result.path, backend="onnxruntime")  # an explicit backend still wins
    assert explicit.backend.name == "onnxruntime"


def test_other_device_gets_a_warning(deployed, tmp_path: Path) -> None:
    from edgesam.bundle.format import write_metadata
    from edgesam.predictor import SamPredictor

    result, _, _ = deployed
    copy = tmp_path / "copy"
    shutil.copytree(result.path, copy, ignore=shutil.ignore_patterns("*_cache"))
    meta = json.loads((copy / METADATA_FILE).read_text())
    meta = {k: v for k, v in meta.items() if k not in ("format", "format_version", "files")}
    meta["deploy"]["device_id"] = "some-other-board-4c"
    (copy / METADATA_FILE).unlink()
    write_metadata(copy, meta)
    with pytest.warns(UserWarning, match="some-other-board-4c"):
        SamPredictor.from_bundle(copy)


def test_history_rows_are_appended(deployed) -> None:
    result, root, _ = deployed
    assert result.history and all(p.parent == root / "history" for p in result.history)
    rows = [json.loads(line) for p in result.history for line in p.read_text().splitlines()]
    measured = [c for c in result.candidates if c.latency_ms and c.fidelity]
    assert len(rows) == len(measured)
    assert all(r["config"]["extra"]["source"] == "edgesam deploy" for r in rows)
    assert sum(r["config"]["extra"]["chosen"] for r in rows) == 1


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, RuntimeError])
def test_interrupted_or_failing_run_leaves_no_folder(deployed, tmp_path: Path, interrupt: type) -> None:
    from edgesam.deploy import deploy

    _, root, _ = deployed

    def log(message: str) -> None:
        if message.startswith("onnxruntime-fp32:"):  # after the first candidate was measured
            raise interrupt("stop")

    with pytest.raises(interrupt):
        deploy("edgesam-demo", tmp_path / "out", candidates=["onnxruntime-fp32", "openvino-fp32"], heldout=1,
               prompts_per_image=2, quick=True, work_dir=root / "work", log=log, show_progress=False)  # fmt: skip
    assert list(tmp_path.iterdir()) == []  # neither the output nor the staging folder


def test_command_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edgesam.cli import main

    assert main(["deploy", "edgesam-demo", "-o", str(tmp_path / "o"), "--min-iou", "1.5"]) == 2
    assert "--min-iou" in capsys.readouterr().err
    (tmp_path / "exists").mkdir()
    assert main(["deploy", "edgesam-demo", "-o", str(tmp_path / "exists"), "--no-history"]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["deploy", "no-such-model", "-o", str(tmp_path / "o"), "--no-history",
                 "--candidates", "onnxruntime-fp32"]) == 2  # fmt: skip
    assert "no-such-model" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
