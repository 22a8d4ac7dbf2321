"""Tests for the benchmark suite, `edgesam bench` and `edgesam demo` (small 256-px model)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
from bundle_fixtures import SIZE, small_bundle, small_model

from edgesam.bench import ResultsDirError, TimingPlan, TimingStats, current_rss_mb, load_rows
from edgesam.bench.cases import BudgetPlans
from edgesam.bench.coldstart import measure_cold_start
from edgesam.metrics import embedding_cosine
from edgesam.metrics import mask_iou
from edgesam.bench.report import write_report
from edgesam.bench.skips import load_skips
from edgesam.bench.sources import ModelSource
from edgesam.bench.suite import SuiteOptions, check_results_dir, run_suite
from edgesam.bench.variants import (DEFAULT_PRECISIONS, DeviceProbe, parse_names, plan_variants, resolve_grid,
                                    validate_names)
from edgesam.cli import main
from edgesam.io import read_image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ONE_RUN = TimingPlan(warmup=0, min_runs=1, min_seconds=0.0, max_runs=1)
TINY = BudgetPlans(timing=ONE_RUN, first_mask=ONE_RUN, everything=ONE_RUN, everything_points=2,
                   cold_start_runs=1, fidelity_images=1)
ALL_UP = {"torch": True, "onnxruntime": True, "openvino": True, "tensorrt": True}
needs_no_tensorrt = pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None,
                                       reason="tensorrt is installed here")


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> ModelSource:
    """The session's shared vit_t 256-px bundle and its seeded weights as a checkpoint file."""
    pytest.importorskip("onnxruntime")
    from safetensors.torch import save_file

    ckpt = tmp_path_factory.mktemp("checkpoint") / "vit_t_256.safetensors"
    state = {k: v.contiguous() for k, v in small_model().state_dict().items()}
    save_file(state, str(ckpt), metadata={"arch": "vit_t", "image_size": str(SIZE)})
    return ModelSource(name="random", arch="vit_t", image_size=SIZE,
                       bundle=small_bundle(tmp_path_factory), checkpoint=ckpt, random_weights=True)


@pytest.fixture(scope="module")
def run(source: ModelSource, tmp_path_factory: pytest.TempPathFactory):
    """One tiny suite run: torch + onnxruntime fp32, tensorrt (not installed here), and an
    onnxruntime int8 whose quantization is asked for an unknown recipe (so it fails)."""
    results = tmp_path_factory.mktemp("results")
    options = SuiteOptions(backends=("torch", "onnxruntime", "tensorrt"), precisions=("fp32", "int8"),
                           budget=TINY, image_hw=(120, 160), threads=1, show_progress=False,
                           quantize_options={"recipe": "no-such-recipe"})
    return run_suite(source, options, results_dir=results, log=lambda _: None), results


# --------------------------------------------------------------------------- planning


def test_unknown_backend_or_precision_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown backend.*'cuda'.*known: torch"):
        validate_names(["torch", "cuda"], ["fp32"])
    with pytest.raises(ValueError, match="unknown precision.*'int4'"):
        plan_variants(["onnxruntime"], ["fp32", "int4"], has_torch_weights=True, availability=ALL_UP)
    assert parse_names(["onnxruntime,openvino", "torch", "openvino"]) == ("onnxruntime", "openvino", "torch")


def test_presets_give_their_grid_and_named_flags_win() -> None:
    from edgesam.runtimes.registry import BACKENDS

    assert resolve_grid() == (tuple(BACKENDS), DEFAULT_PRECISIONS)
    assert resolve_grid("int8") == (("onnxruntime", "openvino"), ("fp32", "int8"))
    assert resolve_grid("runtimes-fp32") == (("torch", "onnxruntime", "openvino"), ("fp32", "bf16"))
    assert resolve_grid("int8", None, ("int8",)) == (("onnxruntime", "openvino"), ("int8",))
    assert resolve_grid("runtimes-fp32", ("openvino",)) == (("openvino",), ("fp32", "bf16"))
    with pytest.raises(ValueError, match="unknown preset 'x'; known: runtimes-fp32, int8"):
        resolve_grid("x")
    with pytest.raises(ValueError, match="unknown backend"):
        resolve_grid("int8", ("tpu",))


def test_precision_rules_skip_with_reasons() -> None:
    probe = DeviceProbe(isa=(), ov_devices=lambda: ["CPU"], cuda=lambda: False)
    variants, skipped = plan_variants(["onnxruntime", "openvino", "torch"], ["int8", "fp16", "fp32", "bf16"],
                                      has_torch_weights=True, availability=ALL_UP, probe=probe)
    got = [(v.backend, v.precision, v.bundle_kind) for v in variants]
    assert got[0] == ("torch", "fp32", "torch")  # baseline first
    assert set(got) == {("torch", "fp32", "torch"), ("onnxruntime", "int8", "int8"),
                        ("onnxruntime", "fp32", "fp32"), ("openvino", "int8", "int8"),
                        ("openvino", "fp32", "fp32")}
    reasons = {(s.backend, s.precision): s.reason for s in skipped}
    assert "GPU" in reasons[("openvino", "fp16")] and "bf16" in reasons[("openvino", "bf16")]
    assert "INT8" in reasons[("torch", "int8")]
    ov_fp32 = next(v for v in variants if v.label == "openvino fp32")
    assert ov_fp32.options["precision"] == "fp32"  # never silently bf16


def test_gpu_and_bf16_rules_follow_the_device() -> None:
    probe = DeviceProbe(isa=("avx512_bf16",), ov_devices=lambda: ["CPU", "GPU.0"], cuda=lambda: False)
    variants, _ = plan_variants(["openvino"], ["fp16", "bf16"], has_torch_weights=False,
                                availability=ALL_UP, probe=probe)
    assert {(v.precision, v.options["device"], v.options["precision"]) for v in variants} == {
        ("fp16", "GPU.0", "fp16"), ("bf16", "CPU", "bf16")}
    variants, skipped = plan_variants(["torch", "tensorrt"], ["fp32"], has_torch_weights=False,
                                      availability={**ALL_UP, "tensorrt": "missing package(s) tensorrt"})
    assert variants == []
    assert "no torch weights" in skipped[0].reason and "not installed" in skipped[1].reason


def test_fidelity_figures() -> None:
    a = np.zeros((2, 4, 4), bool)
    b = a.copy()
    a[0, :2], b[0, :1] = True, True
    np.testing.assert_allclose(mask_iou(a, b), [0.5, 1.0])
    with pytest.raises(ValueError, match="mask shapes differ"):
        mask_iou(a, b[:1])
    x = np.arange(12, dtype=np.float32).reshape(1, 3, 2, 2)
    assert embedding_cosine(x, 2 * x) == pytest.approx(1.0)
    assert embedding_cosine(x, -x) == pytest.approx(-1.0)
    zero = np.zeros_like(x)
    assert embedding_cosine(zero, zero) == 1.0 and embedding_cosine(zero, x) == 0.0
    with pytest.raises(ValueError, match="embedding shapes differ"):
        embedding_cosine(x, x[..., :1])


# --------------------------------------------------------------------------- results folder


def test_unwritable_results_dir_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(ResultsDirError, match="not a folder"):
        check_results_dir(blocker)
    with pytest.raises(ResultsDirError, match="not writable"):
        check_results_dir(blocker / "results")
    # The command fails before exporting or measuring anything.
    assert main(["bench", "--arch", "vit_t", "-o", str(blocker / "results")]) == 2
    assert "not writable" in capsys.readouterr().err


def test_cli_rejects_unknown_names_before_measuring(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", "--arch", "vit_t", "--backends", "onnxruntime,tpu",
                 "-o", str(tmp_path)]) == 2
    assert "unknown backend(s) 'tpu'" in capsys.readouterr().err
    assert main(["bench", "--arch", "vit_t", "--precisions", "fp8", "-o", str(tmp_path)]) == 2
    assert "unknown precision(s) 'fp8'" in capsys.readouterr().err
    assert main(["bench", "--arch", "vit_t", "--preset", "fastest", "--results-dir", str(tmp_path)]) == 2
    assert "unknown preset 'fastest'; known: runtimes-fp32, int8" in capsys.readouterr().err
    assert main(["bench", "--arch", "vit_t", "--preset", "int8", "--precisions", "fp8",
                 "--results-dir", str(tmp_path)]) == 2  # explicit flags win over the preset's grid
    assert "unknown precision(s) 'fp8'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- a real run


def test_a_failing_variant_is_recorded_and_the_run_goes_on(run) -> None:
    result, results_dir = run
    assert [(f.backend, f.precision) for f in result.failed] == [("onnxruntime", "int8")]
    assert "unknown quantization recipe 'no-such-recipe'" in result.failed[0].reason
    entries = next(iter(load_skips(results_dir).values()))
    assert any(e["precision"] == "int8" and e["reason"].startswith("failed:") for e in entries)


def test_rows_carry_fingerprint_speedup_and_fidelity(run) -> None:
    result, results_dir = run
    assert [(r.config.backend, r.config.precision) for r in result.rows] == [
        ("torch", "fp32"), ("onnxruntime", "fp32")]
    for row in result.rows:
        assert row.device["cpu"]["model"] and row.device_id and row.device["python"]
        assert row.config.arch == "vit_t" and row.config.image_size == 256 and row.config.threads
        assert row.config.extra["model"] == "random"
        timings = [n for n, v in row.metrics.items() if isinstance(v, TimingStats)]
        for name in ("encoder", "first_mask", "decode_point", "decode_box", "decode_box16", "cold_start"):
            assert name in timings
        assert set(row.speedup) == set(timings)
        assert row.baseline and row.baseline.startswith("torch fp32")
        assert row.metrics["peak_rss_mb"] > 50 and row.metrics["model_mb"] > 1
        assert row.metrics["peak_rss_mb"] >= row.metrics["steady_rss_mb"] > row.metrics["baseline_rss_mb"] > 20
    torch_row, ort_row = result.rows
    assert all(v == pytest.approx(1.0) for v in torch_row.speedup.values())
    assert torch_row.fidelity == {}
    assert ort_row.metrics["encoder_mb"] > 1 and ort_row.metrics["decoder_mb"] > 1
    assert ort_row.fidelity["embedding_cosine"] > 0.999
    assert ort_row.fidelity["mask_iou_mean"] > 0.98
    stored = load_rows(results_dir)
    assert [r.config.key() for r in stored] == [r.config.key() for r in result.rows]


def test_progress_bar_names_each_phase(source: ModelSource,
                                     capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("tqdm")
    no_children = BudgetPlans(timing=ONE_RUN, first_mask=ONE_RUN, everything=ONE_RUN, everything_points=0,
                              cold_start_runs=0, fidelity_images=1)
    options = SuiteOptions(backends=("onnxruntime",), precisions=("fp32", "fp16"), budget=no_children,
                           image_hw=(60, 80), threads=1, show_progress=True)
    said: list[str] = []
    result = run_suite(source, options, log=said.append)
    err = capsys.readouterr().err
    assert [r.config.precision for r in result.rows] == ["fp32"] and result.files == []
    assert "bench: 100%" in err and "6/6" in err and "onnxruntime fp32: decoders" in err
    assert [s.precision for s in result.skipped] == ["fp16"] and said == []


def test_cold_start_memory_is_the_child_s_own(source: ModelSource) -> None:
    """The child's peak RSS must not inherit the (large) benchmark process's high-water mark."""
    ballast = np.ones(2**27, dtype=np.float64)  # 1 GiB resident in this process
    spec = {"backend": "onnxruntime", "precision": "fp32", "threads": 1, "options": {},
            "bundle": str(source.bundle)}
    image = np.full((120, 160, 3), 90, np.uint8)
    cold = measure_cold_start(spec, image, np.array([[80.0, 60.0]], np.float32), runs=1)
    assert cold.total.n == 1 and cold.load.p50_ms < cold.total.p50_ms
    assert 20 < cold.peak_rss_mb < current_rss_mb() - 512
    del ballast


@needs_no_tensorrt
def test_missing_backend_is_skipped_with_its_reason_in_the_report(run, tmp_path: Path) -> None:
    result, results_dir = run
    reasons = {(s.backend, s.precision): s.reason for s in result.skipped}
    assert "pip install 'edgesam[tensorrt]'" in reasons[("tensorrt", "fp32")]
    (device, entries), = load_skips(results_dir).items()
    assert device == result.rows[0].device_id
    assert {(e["backend"], e["precision"]) for e in entries} == {
        ("tensorrt", "fp32"), ("tensorrt", "int8"), ("torch", "int8"), ("onnxruntime", "int8")}
    paths = write_report(results_dir, tmp_path / "report", plots=False)
    text = paths[0].read_text()
    assert "Not measured on" in text and "edgesam[tensorrt]" in text
    assert "| torch | fp32 | fp32 | vit_t 256px" in text  # backend, precision, what ran, model


def test_bench_report_command_writes_markdown_and_plots(run, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    _, results_dir = run
    out = tmp_path / "report"
    assert main(["bench", "report", "--results-dir", str(results_dir), "--out", str(out)]) == 0
    assert (out / "README.md").read_text().startswith("# Benchmark results")
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 2 and all(p.read_bytes()[:8] == PNG_SIGNATURE for p in pngs)


def test_demo_runs_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """`edgesam demo --quick` on the embedded edgesam-demo: export, INT8, bench, overlay, report."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("matplotlib")
    out = tmp_path / "demo"
    code = main(["demo", "-o", str(out), "--quick", "--threads", "1", "-q"])
    captured = capsys.readouterr()
    text = captured.out
    assert code == 0, text + captured.err
    assert "NOT a general-purpose SAM" in text and "synthetic" in text
    assert "segmented synthetic sample scene" in text
    assert re.search(r"with (onnxruntime|openvino) (int8|fp32) \(single-mask output\)", text), text
    image = read_image(out / "overlay.png")
    sample = read_image(out / "sample.png")
    assert image.shape[1:] == (2 * sample.shape[1] + 8, 3)
    assert image.shape[0] > sample.shape[0]  # the caption strip naming model, backend, precision
    mask = read_image(out / "mask.png")[..., 0] > 127
    assert 0 < mask.sum() < mask.size / 2  # one object, not the background
    report = (out / "report" / "README.md").read_text()
    assert "| torch | fp32 | fp32 | edgesam_demo 128px" in report
    assert "| onnxruntime | int8 | int8" in report and "Not measured on" in report
    assert len(list((out / "report").glob("*.png"))) == 2
    rows = load_rows(out / "results")
    assert {(r.config.backend, r.config.precision) for r in rows} >= {
        ("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8")}
    assert all(r.speedup and r.device_id for r in rows)
    int8 = next(r for r in rows if r.config.precision == "int8" and r.config.backend == "onnxruntime")
    assert "encoder_int8_ops" in int8.metrics and int8.fidelity["embedding_cosine"] > 0.9
    skipped = json.loads(next((out / "results").glob("*.skipped.json")).read_text())
    assert any(e["precision"] == "fp16" for e in skipped["entries"])
