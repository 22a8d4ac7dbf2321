"""Benchmark plots and labels: what ran, readable values, flagged rows marked, nothing cut off."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgesam.bench.labels import flag_kinds, format_ms, metric_title, precision_word, ran_label, short_labels
from edgesam.bench.report import MAIN_COLUMNS, device_markdown
from edgesam.bench.results import BenchConfig, ResultRow
from edgesam.bench.timing import TimingStats

LOAD_FLAG = "load average 2.6 was above the 2 usable CPUs"
LONG = {"model": "edgesam-demo", "image": "640x480"}


def _config(backend: str, precision: str, runs: str, **extra: str) -> BenchConfig:
    return BenchConfig(backend=backend, precision=precision, arch="edgesam_demo", image_size=128, threads=2,
                       quick=True, extra={**LONG, **extra, "runs": runs})


def _row(config: BenchConfig, encoder: float, *, flags: tuple[str, ...] = (), hour: int = 10) -> ResultRow:
    metrics = {"encoder": TimingStats.from_samples([encoder * 0.95, encoder, encoder * 1.05]),
               "first_mask": TimingStats.from_samples([encoder * 1.5] * 3), "load_avg_1m": 1.0,
               "steady_rss_mb": 120.0, "peak_rss_mb": 130.0, "model_mb": 3.2}
    return ResultRow(config=config, metrics=metrics, device_id="dev", device={"cpu": {"usable_cpus": 2}},
                     timestamp=f"2026-01-01T{hour:02d}:00:00.000Z", fidelity={"mask_iou_mean": 0.99,
                     "embedding_cosine": 0.999, "mask_iou_min": 0.9}, flags=list(flags))  # fmt: skip


@pytest.fixture
def rows() -> list[ResultRow]:
    """The demo's five configurations; the slow torch row was measured under load (flagged)."""
    return [_row(_config("torch", "fp32", "fp32", device="cpu"), 2590.0, flags=(LOAD_FLAG,)),
            _row(_config("onnxruntime", "fp32", "fp32"), 2.62),
            _row(_config("onnxruntime", "int8", "fp32"), 5.13),
            _row(_config("openvino", "fp32", "f32", device="CPU"), 2.42),
            _row(_config("openvino", "int8", "bf16", device="CPU"), 3.26)]


def test_labels_say_what_ran_in_one_spelling(rows) -> None:
    assert [precision_word(w) for w in ("f32", "FP32", "bfloat16", "f16", "int8")] == \
        ["fp32", "fp32", "bf16", "fp16", "int8"]
    assert ran_label(_config("onnxruntime", "int8", "fp32")) == "int8 (float parts fp32)"
    assert ran_label(_config("openvino", "fp32", "f32")) == "fp32"
    assert ran_label(_config("openvino", "bf16", "f32")) == "fp32 (bf16 asked)"
    assert ran_label(BenchConfig("onnxruntime", "int8", "vit_t", 256)) == "int8"  # nothing reported
    labels = short_labels([r.config for r in rows])
    assert sorted(labels.values()) == ["onnxruntime fp32", "onnxruntime int8 (float parts fp32)", "openvino fp32",
                                       "openvino int8 (float parts bf16)", "torch fp32"]
    # a setting that tells two configurations of one backend apart is kept
    two = [_config("openvino", "fp32", "f32", device="CPU"), _config("openvino", "fp32", "f32", device="GPU")]
    assert set(short_labels(two).values()) == {"openvino fp32 device=CPU", "openvino fp32 device=GPU"}


def test_values_read_at_a_glance() -> None:
    assert [format_ms(v) for v in (0.4213, 5.126, 31.34, 810.2, 2590.4, 12345.0)] == \
        ["0.42 ms", "5.13 ms", "31.3 ms", "810 ms", "2590 ms", "12.3 s"]
    assert flag_kinds([LOAD_FLAG, "first mask 247 ms is below the encoder 832 ms it includes"]) == \
        ["load", "first mask < encoder"]
    assert metric_title("everything_8pps") == "everything_8pps: segment everything, 8 points per side"


def _inside(box, outer, slack: float = 0.5) -> bool:
    return (box.x0 >= outer.x0 - slack and box.x1 <= outer.x1 + slack and box.y0 >= outer.y0 - slack
            and box.y1 <= outer.y1 + slack)


def test_latency_chart_marks_flagged_rows_and_keeps_labels_clear(rows) -> None:
    pytest.importorskip("matplotlib")
    from edgesam.bench.plots import FLAG_HATCH, latency_figure

    fig = latency_figure(rows, title="dev: latest")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["fp32", "int8", "flagged: figures inconsistent (load)"]
    assert _inside(legend.get_window_extent(renderer), fig.bbox)
    for ax in fig.axes:
        ticks = [t.get_text() for t in ax.get_yticklabels()]
        hatched = {ticks[round(bar.get_y() + bar.get_height() / 2)]: bar.get_hatch() for bar in ax.patches}
        assert hatched.pop("torch fp32") == FLAG_HATCH and set(hatched.values()) == {None}
        values = [t for t in ax.texts]
        expected = "2590 ms (flagged)" if ax.get_title(loc="left").startswith("encoder") else "3885 ms (flagged)"
        assert expected in [t.get_text() for t in values]
        assert not any("e+" in t.get_text() for t in values)
        for text in values + ax.get_yticklabels():  # value labels and row names: inside the figure,
            box = text.get_window_extent(renderer)  # never under the legend
            assert _inside(box, fig.bbox), text.get_text()
            assert not box.overlaps(legend.get_window_extent(renderer)), text.get_text()


def test_history_legend_fits_and_flagged_points_are_hollow(rows) -> None:
    pytest.importorskip("matplotlib")
    from edgesam.bench.plots import history_figure

    older = [_row(r.config, r.metrics["encoder"].p50_ms * 1.1, hour=9) for r in rows]
    fig = history_figure(older + rows, title="dev: history")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (legend,) = fig.legends
    names = [t.get_text() for t in legend.get_texts()]
    assert "onnxruntime int8 (float parts fp32)" in names and not any("model=" in n or "runs=" in n for n in names)
    assert names[-1] == "hollow point: flagged: figures inconsistent (load)"
    assert _inside(legend.get_window_extent(renderer), fig.bbox)  # was cut off on both sides
    encoder_ax = fig.axes[0]
    assert encoder_ax.get_yscale() == "log"  # 2590 ms beside 2.4 ms: linear would flatten the fast ones
    hollow = [line for line in encoder_ax.get_lines() if line.get_markerfacecolor() == "white"]
    assert len(hollow) == 1 and len(hollow[0].get_xdata()) == 1  # the flagged torch run only


def test_report_main_table_is_narrow_and_marks_flags(rows) -> None:
    md = device_markdown("dev", rows)
    lines = md.splitlines()
    head = next(line for line in lines if line.startswith("| backend | precision | what ran"))
    assert head.count("|") - 1 <= len(MAIN_COLUMNS) <= 14
    torch_main = next(line for line in lines if line.startswith("| torch"))
    assert "| fp32 | fp32 | edgesam_demo 128px 2t (quick) | 2590 ms |" in torch_main
    assert torch_main.endswith("| INCONSISTENT: load |")
    assert "| onnxruntime | int8 | int8 (float parts fp32) |" in md and "f32" not in md.replace("fp32", "")
    assert md.count("INCONSISTENT, not a result") == 1 and LOAD_FLAG in md
    details = lines[lines.index(next(line for line in lines if line.startswith("Details"))):]
    torch_details = next(line for line in details if line.startswith("| torch"))
    assert "device=cpu image=640x480 model=edgesam-demo" in torch_details and "peak_rss_mb 130" in torch_details
    assert "runs=" not in md


def test_write_report_pngs_are_not_cut(tmp_path: Path, rows) -> None:
    pytest.importorskip("matplotlib")
    from edgesam.bench.results import append_rows
    from edgesam.bench.report import write_report

    append_rows(tmp_path / "results", rows)
    paths = write_report(tmp_path / "results", tmp_path / "report")
    import matplotlib.image

    for png in paths[1:]:
        pixels = matplotlib.image.imread(png)
        # a white margin all round: the tight bounding box kept every label inside the image
        for edge in (pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]):
            assert float(edge[..., :3].min()) > 0.95, png.name
