"""Tests for edgesam.bench: fingerprint, timing, JSONL results, report."""

from __future__ import annotations

import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgesam.bench import (
    QUICK_PLAN,
    BenchConfig,
    ResultRow,
    ResultsDirError,
    TimingStats,
    append_rows,
    compute_speedup,
    current_rss_mb,
    device_fingerprint,
    device_id,
    load_rows,
    measure,
    peak_rss_mb,
    write_report,
)
from edgesam.hardware import FINGERPRINT_KEYS, ISA_FLAGS, parse_cpuinfo, parse_nvidia_smi_csv

REPO = Path(__file__).resolve().parents[1]
SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def fingerprint() -> dict:
    return device_fingerprint()


# --------------------------------------------------------------------------- device


def test_fingerprint_keys_and_sane_values(fingerprint: dict) -> None:
    fp = fingerprint
    assert set(fp) == set(FINGERPRINT_KEYS)
    cpu = fp["cpu"]
    assert isinstance(cpu["model"], str) and cpu["model"].strip()
    assert cpu["logical_cpus"] == os.cpu_count()
    assert 1 <= cpu["usable_cpus"] <= cpu["logical_cpus"]
    assert 1 <= cpu["physical_cores"] <= cpu["logical_cpus"]
    assert set(cpu["isa"]) <= set(ISA_FLAGS)
    assert fp["python"] == platform.python_version()
    assert fp["machine"] == platform.machine()
    assert fp["packages"]["numpy"] == np.__version__
    assert fp["ram_total_mb"] is None or fp["ram_total_mb"] > 64
    assert isinstance(fp["gpus"], list)
    assert fp["git_commit"] is None or re.fullmatch(r"[0-9a-f]{40}", fp["git_commit"])
    json.dumps(fp)  # JSON-serialisable as is


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="needs Linux /proc/cpuinfo")
def test_fingerprint_matches_proc_files(fingerprint: dict) -> None:
    blocks = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    flags = set((blocks[0].get("flags") or blocks[0].get("Features") or "").split())
    assert fingerprint["cpu"]["isa"] == [f for f in ISA_FLAGS if f in flags]
    meminfo = Path("/proc/meminfo").read_text()
    kib = int(re.search(r"MemTotal:\s*(\d+)", meminfo).group(1))
    assert fingerprint["ram_total_mb"] == pytest.approx(kib / 1024, abs=0.1)
    assert fingerprint["cpu"]["usable_cpus"] <= len(os.sched_getaffinity(0))


def test_fingerprint_imports_no_heavy_modules() -> None:
    code = (
        "import sys; import edgesam; before = set(sys.modules)\n"
        "from edgesam.bench import device_fingerprint, measure, write_report\n"
        "device_fingerprint()\n"
        "heavy = {'torch', 'onnxruntime', 'openvino', 'tensorrt', 'nncf', 'cv2', 'matplotlib'}\n"
        "print(sorted(heavy & (set(sys.modules) - before)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_device_id_stable_and_filesystem_safe(fingerprint: dict) -> None:
    slug = device_id(fingerprint)
    assert SLUG.match(slug) and len(slug) <= 96
    assert device_id(device_fingerprint()) == slug
    assert device_id(json.loads(json.dumps(fingerprint))) == slug
    # software versions do not change it, hardware does
    newer = dict(fingerprint, packages={}, python="9.9", git_commit="f" * 40)
    assert device_id(newer) == slug
    more_cores = dict(fingerprint, cpu=dict(fingerprint["cpu"], usable_cpus=999))
    assert device_id(more_cores) != slug and "999c" in device_id(more_cores)


def test_device_id_examples_and_odd_input() -> None:
    epyc = {"cpu": {"model": "AMD EPYC", "microarch": "zen5", "usable_cpus": 2}, "gpus": []}
    assert device_id(epyc) == "amd-epyc-zen5-2c"
    intel = {"cpu": {"model": "Intel(R) Core(TM) i7-1165G7 @ 2.80GHz", "usable_cpus": 8},
             "gpus": [{"name": "NVIDIA GeForce RTX 3060"}, {"name": "NVIDIA GeForce RTX 3060"}]}
    assert device_id(intel) == "intel-core-i7-1165g7-8c-nvidia-geforce-rtx-3060-x2"
    jetson = {"cpu": {"model": "Cortex-A78AE", "usable_cpus": 12}, "gpus": [],
              "jetson": {"model": "NVIDIA Jetson AGX Orin Developer Kit", "power_mode": "MAXN"}}
    assert device_id(jetson) == "nvidia-jetson-agx-orin-maxn-cortex-a78ae-12c"
    odd = {"cpu": {"model": "../../etc/pässwd \x00 " + "x" * 300, "usable_cpus": 4}}
    for fp in (odd, {}):
        slug = device_id(fp)
        assert SLUG.match(slug) and len(slug) <= 96


def test_parsers_on_sample_text() -> None:
    arm = ("processor\t: 0\nBogoMIPS\t: 62.50\nFeatures\t: fp asimd asimdhp asimddp i8mm\n"
           "CPU implementer\t: 0x41\n\nprocessor\t: 1\nFeatures\t: fp asimd\n\n"
           "Hardware\t: Orin\n")
    blocks = parse_cpuinfo(arm)
    assert len(blocks) == 3 and blocks[0]["Features"].split()[-1] == "i8mm"
    assert blocks[2]["Hardware"] == "Orin"
    smi = "NVIDIA H100 80GB HBM3, 550.54.15\nNVIDIA H100 80GB HBM3, 550.54.15\n"
    assert parse_nvidia_smi_csv(smi) == [
        {"name": "NVIDIA H100 80GB HBM3", "driver_version": "550.54.15"}] * 2
    assert parse_nvidia_smi_csv("") == []


# --------------------------------------------------------------------------- timing


def test_measure_respects_min_runs_and_warmup() -> None:
    calls = []
    stats = measure(lambda: calls.append(1), warmup=2, min_runs=7, min_seconds=0.0, max_runs=50)
    assert stats.n == 7 and len(calls) == 9
    assert len(stats.samples_ms) == 7


def test_measure_respects_min_seconds_and_max_runs() -> None:
    stats = measure(lambda: time.sleep(0.002), warmup=0, min_runs=1, min_seconds=0.06,
                    max_runs=1000)
    assert sum(stats.samples_ms) >= 60.0
    assert stats.min_ms >= 2.0 and 1 < stats.n < 31
    capped = measure(lambda: time.sleep(0.001), warmup=0, min_runs=2, min_seconds=100.0,
                     max_runs=4)
    assert capped.n == 4


def test_measure_percentiles_match_numpy() -> None:
    rng = np.random.default_rng(0)
    stats = measure(lambda: np.linalg.svd(rng.standard_normal((40, 40))), warmup=1,
                    min_runs=25, min_seconds=0.0, max_runs=25)
    s = np.array(stats.samples_ms)
    assert stats.min_ms <= stats.p50_ms <= stats.p90_ms <= stats.p99_ms <= stats.max_ms
    np.testing.assert_allclose([stats.p50_ms, stats.p90_ms, stats.p99_ms],
                               np.percentile(s, [50, 90, 99]))
    assert stats.mean_ms == pytest.approx(s.mean())
    assert stats.std_ms == pytest.approx(s.std(ddof=1))
    assert TimingStats.from_dict(stats.to_dict()) == stats
    assert "samples_ms" not in stats.to_dict()


def test_measure_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_runs"):
        measure(lambda: None, min_runs=5, max_runs=2)
    with pytest.raises(ValueError, match="min_runs"):
        measure(lambda: None, min_runs=0)
    with pytest.raises(ValueError):
        TimingStats.from_samples([])


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux procfs")
def test_rss_probes() -> None:
    before = current_rss_mb()
    block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
    after = current_rss_mb()
    assert before is not None and after is not None and after - before > 48
    assert peak_rss_mb() >= after - 1
    del block


# --------------------------------------------------------------------------- results


def _row(fp: dict, *, backend: str = "onnxruntime", precision: str = "fp32", p50: float = 100.0,
         stamp: str | None = None, commit: str | None = None) -> ResultRow:
    config = BenchConfig(backend=backend, precision=precision, arch="vit_t", image_size=256,
                         threads=2, quick=True, extra={"provider": "cpu"})
    stats = TimingStats.from_samples([p50 * 0.9, p50, p50, p50 * 1.2])
    row = ResultRow.create(config, {"encoder": stats, "peak_rss_mb": 321.5},
                           fidelity={"embedding_cosine": 0.998}, speedup={"encoder": 2.5},
                           baseline="torch fp32", fingerprint=dict(fp, git_commit=commit))
    if stamp:
        row.timestamp = stamp
    return row


def test_jsonl_round_trip(tmp_path: Path, fingerprint: dict) -> None:
    rows = [_row(fingerprint, stamp="2026-01-01T10:00:00.000Z"),
            _row(fingerprint, precision="int8", p50=50.0, stamp="2026-01-01T11:00:00.000Z")]
    written = append_rows(tmp_path / "results" / "nested", rows)
    dev = device_id(fingerprint)
    assert written == [tmp_path / "results" / "nested" / f"{dev}.jsonl"]
    append_rows(tmp_path / "results" / "nested", rows[:1])
    assert len(written[0].read_text().splitlines()) == 3
    loaded = load_rows(tmp_path / "results" / "nested")
    # oldest first; equal timestamps keep file order
    assert [r.to_dict() for r in loaded] == [r.to_dict() for r in (rows[0], rows[0], rows[1])]
    assert isinstance(loaded[0].metrics["encoder"], TimingStats)
    assert loaded[0].metrics["encoder"] == rows[0].metrics["encoder"]
    assert loaded[0].config == rows[0].config and loaded[0].device_id == dev
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", _row(fingerprint).timestamp)
    assert load_rows(tmp_path / "missing") == []
    assert load_rows(tmp_path / "results" / "nested", device_id="other") == []


def test_other_benchmarks_logs_beside_the_device_files_are_skipped(tmp_path: Path, fingerprint: dict) -> None:
    (path,) = append_rows(tmp_path, [_row(fingerprint)])
    (tmp_path / "distill.jsonl").write_text('{"kind": "meta", "benchmark": "distill_cache_format"}\n')
    (tmp_path / "serve_load.jsonl").write_text('{"time": "2026-11-30T00:56:07+0000", "threads": 1}\n')
    assert [r.device_id for r in load_rows(tmp_path)] == [device_id(fingerprint)]
    with path.open("a") as fh:  # a damaged line in a bench file is still an error naming it
        fh.write('{"device_id": "x"}\n')
    with pytest.raises(ValueError, match=re.escape(f"{path}:2: not a valid result row")):
        load_rows(tmp_path)


def test_non_finite_values_become_null(tmp_path: Path, fingerprint: dict) -> None:
    row = _row(fingerprint)
    row.fidelity["mask_iou"] = float("nan")
    (path,) = append_rows(tmp_path, [row])
    data = json.loads(path.read_text())
    assert data["fidelity"]["mask_iou"] is None


def test_unwritable_results_dir_raises_clear_error(tmp_path: Path, fingerprint: dict) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for target in (blocker / "results", blocker):
        with pytest.raises(ResultsDirError, match=re.escape(str(target))) as info:
            append_rows(target, [_row(fingerprint)])
        assert isinstance(info.value, OSError)
    with pytest.raises(ResultsDirError, match="not a folder"):
        load_rows(blocker)


def test_bad_rows_are_rejected(tmp_path: Path, fingerprint: dict) -> None:
    row = _row(fingerprint)
    row.device_id = "../escape"
    with pytest.raises(ValueError, match="device_id"):
        append_rows(tmp_path, [row])
    row = _row(fingerprint)
    row.metrics["bad"] = "fast"  # type: ignore[assignment]
    with pytest.raises(TypeError, match="bad"):
        append_rows(tmp_path, [row])
    (tmp_path / "x.jsonl").write_text('{"device_id": "x", "not": "a row"}\n')  # a bench file (device_id) that is damaged
    with pytest.raises(ValueError, match=r"x\.jsonl:1"):
        load_rows(tmp_path)


def test_compute_speedup() -> None:
    fast, slow = TimingStats.from_samples([10.0]), TimingStats.from_samples([40.0])
    assert compute_speedup({"enc": fast, "rss": 1.0}, {"enc": slow, "rss": 2.0}) == {"enc": 4.0}


# --------------------------------------------------------------------------- report


def _check_png(path: Path) -> None:
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert float(pixels[..., :3].std()) > 0.01  # not a blank canvas


def test_report_markdown_and_pngs(tmp_path: Path, fingerprint: dict) -> None:
    results = tmp_path / "results"
    append_rows(results, [
        _row(fingerprint, p50=100.0, stamp="2026-01-01T10:00:00.000Z", commit="a" * 40),
        _row(fingerprint, backend="openvino", p50=80.0, stamp="2026-01-01T10:00:01.000Z",
             commit="a" * 40),
        _row(fingerprint, p50=90.0, stamp="2026-01-02T10:00:00.000Z", commit="b" * 40),
    ])
    paths = write_report(results, tmp_path / "report")
    dev = device_id(fingerprint)
    md = paths[0]
    assert md == tmp_path / "report" / "README.md"
    text = md.read_text()
    assert f"## {dev}" in text
    # main table first, then the details table: one line each per configuration
    onnx_line, onnx_details = [line for line in text.splitlines() if line.startswith("| onnxruntime")]
    assert "90.0 ms (-10.0%)" in onnx_line and "0.9980 (+0.0%)" in onnx_line
    assert "bbbbbbb" in onnx_details and "encoder 2.50x" in onnx_details and "peak_rss_mb 322" in onnx_details
    assert "provider=cpu" in onnx_details and "provider=cpu" not in onnx_line
    ov_line = next(line for line in text.splitlines() if line.startswith("| openvino"))
    assert "80.0 ms |" in ov_line and "%" not in ov_line  # first run: nothing to compare
    head = text.splitlines()[text.splitlines().index(onnx_line) - 2]
    assert head == "| backend | precision | what ran | model | encoder | emb. cosine |"  # no all-empty columns
    pngs = paths[1:]
    assert {p.name for p in pngs} == {f"{dev}-latency.png", f"{dev}-history.png"}
    for png in pngs:
        assert f"]({png.name})" in text
        _check_png(png)


def test_report_lists_what_is_still_not_measured(tmp_path: Path, fingerprint: dict) -> None:
    from edgesam.bench.skips import record_skips

    results = tmp_path / "results"
    append_rows(results, [_row(fingerprint, stamp="2026-01-02T10:00:00.000Z")])
    dev = device_id(fingerprint)
    entry = {"backend": "onnxruntime", "precision": "fp32", "arch": "vit_t", "image_size": 256, "model": None}
    record_skips(results, dev, [
        {**entry, "reason": "measured since", "timestamp": "2026-01-01T10:00:00.000Z"},
        {**entry, "precision": "int8", "reason": "runtime | missing", "timestamp": "2026-01-01T10:00:00.000Z"}])
    record_skips(results, "other-device", [{**entry, "reason": "no rows there", "timestamp": "2026-01-03T10:00:00Z"}])
    text = write_report(results, tmp_path / "report", plots=False)[0].read_text()
    section = text[text.index(f"### Not measured on {dev}"):]
    assert "| onnxruntime | int8 | vit_t | 256 |  | runtime \\| missing | 2026-01-01 10:00 |" in section
    assert "measured since" not in text  # a later row of the same combination supersedes its skip
    assert "### Not measured on other-device" in text and "no rows there" in text
    assert text.index(f"## {dev}") < text.index(f"### Not measured on {dev}")


def test_report_without_results_or_matplotlib(tmp_path: Path, fingerprint: dict) -> None:
    with pytest.raises(ValueError, match="no benchmark results"):
        write_report(tmp_path / "empty", tmp_path / "out")
    append_rows(tmp_path / "results", [_row(fingerprint)])
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from edgesam.bench import write_report\n"
            f"try: write_report({str(tmp_path / 'results')!r}, {str(tmp_path / 'out')!r})\n"
            "except ImportError as e: print('ImportError:', e)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True)
    assert "ImportError:" in out.stdout and "pip install matplotlib" in out.stdout
    assert not (tmp_path / "out").exists()
    (md,) = write_report(tmp_path / "results", tmp_path / "md_only", plots=False)
    assert md.name == "README.md" and not list(md.parent.glob("*.png"))


def test_quick_plan_is_bounded() -> None:
    stats = QUICK_PLAN.measure(lambda: None)
    assert QUICK_PLAN.min_runs <= stats.n <= QUICK_PLAN.max_runs
    assert not math.isnan(stats.mean_ms)
