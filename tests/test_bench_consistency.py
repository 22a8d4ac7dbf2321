"""Benchmark rows whose figures cannot all be true are flagged in the JSONL, summary and report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgesam.bench.consistency import P90_OVER_P50_BUDGET, check_metrics, flag_lines, row_flags
from edgesam.hardware import device_fingerprint
from edgesam.bench.fidelity import Outputs
from edgesam.bench.report import device_markdown
from edgesam.bench.results import append_rows, load_rows
from edgesam.bench.rowmaker import RowMaker
from edgesam.bench.sources import ModelSource
from edgesam.bench.report import summary_markdown
from edgesam.bench.timing import TimingStats
from edgesam.bench.variants import Variant


def stats(*ms: float) -> TimingStats:
    return TimingStats.from_samples(ms)


def test_consistent_figures_give_no_flags() -> None:
    metrics = {"encoder": stats(100, 101, 99, 100, 102), "first_mask": stats(110, 111, 109, 112, 110),
               "load_avg_1m": 1.5}
    assert check_metrics(metrics, usable_cpus=2) == []


def test_first_mask_below_the_encoder_is_flagged() -> None:
    # the run: torch fp32 "first mask 247 ms" below "encoder 832 ms"
    flags = check_metrics({"encoder": stats(832, 830, 835), "first_mask": stats(247, 250, 245)}, 2)
    assert flags == ["first mask 247 ms is below the encoder 832 ms it includes"]


def test_unstable_p50_and_load_are_flagged() -> None:
    noisy = stats(100, 100, 101, 99, 100, 400, 420, 390, 100, 100)  # p90 ~ 4x p50
    flags = check_metrics({"decode_point": noisy, "load_avg_1m": 3.4}, usable_cpus=2)
    assert len(flags) == 2
    assert flags[0].startswith("decode_point varied too much") and f"budget {P90_OVER_P50_BUDGET:g}x" in flags[0]
    assert flags[1] == "load average 3.4 was above the 2 usable CPUs"
    assert check_metrics({"load_avg_1m": 3.4}, usable_cpus=None) == []  # unknown CPUs: nothing claimed
    assert check_metrics({"decode_point": stats(1, 9, 1)}, 2) == []  # 3 runs: no p90 to judge


def _outputs() -> Outputs:
    rng = np.random.default_rng(0)
    return Outputs(embeddings=(rng.standard_normal((1, 256, 4, 4)).astype(np.float32),),
                   masks=(rng.random((3, 16, 16)) > 0.5,), scores=(np.ones(3, np.float32),))


@pytest.fixture(scope="module")
def flagged_rows() -> list:
    fp = device_fingerprint()
    fp["cpu"] = {**(fp.get("cpu") or {}), "usable_cpus": 2}
    maker = RowMaker(source=ModelSource("edgesam-demo", "vit_t", 128, Path("unused")), image_label="96x64",
                     threads=2, quick=True, fingerprint=fp)
    out = _outputs()
    torch_row = maker.add(Variant("torch", "fp32", "torch"),
                          {"encoder": stats(832, 830, 835), "first_mask": stats(247, 250, 245),
                           "load_avg_1m": 1.0}, out, {})
    ort_row = maker.add(Variant("onnxruntime", "fp32", "fp32"),
                        {"encoder": stats(2.0, 2.1, 2.0), "first_mask": stats(2.5, 2.4, 2.6),
                         "load_avg_1m": 1.0}, out, {})
    return [torch_row, ort_row]


def test_rows_carry_their_flags_into_the_jsonl(flagged_rows, tmp_path: Path) -> None:
    torch_row, ort_row = flagged_rows
    assert torch_row.flags == ["first mask 247 ms is below the encoder 832 ms it includes"]
    assert ort_row.flags == ["speed-ups are against torch fp32 vit_t 128px 2t image=96x64 model=edgesam-demo "
                             "(quick), whose figures are inconsistent"]
    (path,) = append_rows(tmp_path, flagged_rows)
    data = [json.loads(line) for line in path.read_text().splitlines()]
    assert data[0]["flags"] == torch_row.flags and data[1]["flags"] == ort_row.flags
    loaded = load_rows(tmp_path)
    assert [r.flags for r in loaded] == [torch_row.flags, ort_row.flags]
    ort_row_clean = loaded[1]
    ort_row_clean.flags = []
    assert "flags" not in ort_row_clean.to_dict()  # results stay in the old row format


def test_summary_and_report_mark_the_rows_instead_of_showing_results(flagged_rows) -> None:
    text = summary_markdown(flagged_rows)
    torch_line = next(line for line in text.splitlines() if line.startswith("| torch"))
    assert "torch (INCONSISTENT)" in torch_line and "| (832) | (247) |" in torch_line
    assert "INCONSISTENT torch fp32: first mask 247 ms is below the encoder 832 ms" in text
    assert "not a result" in text and len(flag_lines(flagged_rows)) == 2
    md = device_markdown("dev", flagged_rows)
    assert md.count("INCONSISTENT, not a result") == 2
    assert row_flags(flagged_rows[0]) == flagged_rows[0].flags


def test_old_rows_are_judged_from_their_figures(flagged_rows) -> None:
    row = flagged_rows[0]
    data = row.to_dict()
    data.pop("flags")
    from edgesam.bench.results import ResultRow

    old = ResultRow.from_dict(data)
    assert old.flags == [] and row_flags(old) == row.flags
