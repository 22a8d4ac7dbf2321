"""Markdown tables of benchmark rows: the report over the JSONL history, and one run's summary.

`write_report` writes, for each device, a table with the latest run of every configuration and,
per metric, the change in percent against the previous run of the same configuration; a bar
chart of the latest latencies and a line chart of the history (see `plots`); and a "Not
measured" table of the combinations skipped or failed since their last measurement (see
`skips`). `summary_markdown` is the compact table of one run the CLI prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from .consistency import flag_lines, row_flags
from .plots import plot_history, plot_latency, require_matplotlib
from .results import Metric, ResultRow, load_rows, utc_now_iso
from .skips import load_skips, open_skips
from .timing import TimingStats

__all__ = ["device_markdown", "latest_pairs", "metric_value", "percent_change", "skipped_markdown",
           "summary_markdown", "write_report"]

_HEADER = ("Timings are medians (p50) of in-process runs after warm-up. Each row is the latest run of a configuration; "
           "the percentage in brackets is the change against its previous run (negative = lower, i.e. faster for "
           "latencies). *speedup* = baseline p50 / this p50. Rows marked INCONSISTENT have figures that cannot all "
           "be true (first mask below the encoder, p50 too unstable, load above the usable CPUs): rerun them on a "
           "quiet machine.")
_SUMMARY_TIMES = (("encoder", "encoder"), ("first_mask", "first mask"), ("decode_point", "1 point"),
                  ("decode_box", "1 box"), ("decode_box16", "16 boxes"))


def metric_value(metric: Metric) -> float:
    """The number a metric is compared by: p50 (ms) for timings, the value for scalars."""
    return metric.p50_ms if isinstance(metric, TimingStats) else float(metric)


def percent_change(new: float, old: float) -> float | None:
    """Relative change new vs old in percent; None when `old` is zero."""
    return None if old == 0 else (new - old) / abs(old) * 100.0


def latest_pairs(rows: Sequence[ResultRow]) -> list[tuple[ResultRow, ResultRow | None]]:
    """(latest, previous-or-None) per configuration, for rows of a single device.

    Ordered by arch, image size, backend, precision, threads, quick, extras.
    """
    history: dict[tuple[Any, ...], list[ResultRow]] = {}
    for row in sorted(rows, key=lambda r: r.when):
        history.setdefault(row.config.key(), []).append(row)
    pairs = [(runs[-1], runs[-2] if len(runs) > 1 else None) for runs in history.values()]
    return sorted(pairs, key=lambda p: (p[0].config.arch, p[0].config.image_size, p[0].config.backend,
                                        p[0].config.precision, p[0].config.threads or 0, p[0].config.quick,
                                        p[0].config.key()[-1]))


def _fmt(value: float) -> str:
    size = abs(value)
    return f"{value:.0f}" if size >= 100 else f"{value:.1f}" if size >= 10 else f"{value:.2f}" if size >= 1 \
        else f"{value:.4f}"


def _esc(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _line(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(_esc(c) for c in cells) + " |"


def _table(head: Sequence[str]) -> list[str]:
    return [_line(head), "|" + "---|" * len(head)]


def _device_summary(fp: Mapping[str, Any]) -> str:
    cpu = fp.get("cpu") or {}
    parts = [str(cpu.get("model") or "unknown CPU") + (f" ({cpu['microarch']})" if cpu.get("microarch") else ""),
             f"{cpu.get('usable_cpus', '?')} usable / {cpu.get('logical_cpus', '?')} logical CPUs"]
    if fp.get("ram_total_mb"):
        parts.append(f"{fp['ram_total_mb'] / 1024:.1f} GiB RAM")
    if cpu.get("isa"):
        parts.append("ISA: " + " ".join(cpu["isa"]))
    gpus = fp.get("gpus") or []
    parts.append("GPU: " + (", ".join(g.get("name", "?") for g in gpus) if gpus else "none"))
    if fp.get("jetson"):
        parts.append(f"{fp['jetson'].get('model')} power mode {fp['jetson'].get('power_mode')}")
    parts.append(f"Python {fp.get('python', '?')}")
    parts += [f"{name} {ver}" for name, ver in (fp.get("packages") or {}).items() if ver]
    return " · ".join(_esc(p) for p in parts)


def _cell_value(value: Metric | None, old: Metric | None) -> str:
    """``"298 ms (-5.6%)"``: p50 or scalar, plus change vs the previous run when known."""
    if value is None:
        return ""
    is_time = isinstance(value, TimingStats)
    text = _fmt(metric_value(value)) + (" ms" if is_time else "")
    pct = None if old is None or isinstance(old, TimingStats) != is_time else \
        percent_change(metric_value(value), metric_value(old))
    return text if pct is None else f"{text} ({pct:+.1f}%)"


def device_markdown(device_id: str, rows: Sequence[ResultRow], images: Sequence[str] = ()) -> str:
    """Markdown section for one device: summary line, results table, image links.

    One table row per configuration (its latest run). Timing cells show p50 in ms, scalar
    cells the value; both followed by the change in percent vs the configuration's previous
    run, e.g. ``298 ms (-5.6%)``.
    """
    pairs = latest_pairs(rows)
    names: tuple[list[str], list[str], list[str]] = ([], [], [])  # metric, fidelity, speedup: first seen first
    for latest, _ in pairs:
        for found, source in zip(names, (latest.metrics, latest.fidelity, latest.speedup)):
            found += [n for n in source if n not in found]
    metrics, fidelity, speedup = names
    head = (["backend", "precision", "arch", "size", "threads", "notes"] + metrics
            + [f"fidelity: {n}" for n in fidelity] + [f"speedup: {n}" for n in speedup]
            + ["baseline", "commit", "date"])
    out = [f"## {device_id}", "", _device_summary(max(rows, key=lambda r: r.when).device), "", *_table(head)]
    for latest, prev in pairs:
        c, flags = latest.config, row_flags(latest)
        notes = [f"{k}={v}" for k, v in sorted(c.extra.items())] + (["quick"] if c.quick else []) \
            + ([f"INCONSISTENT, not a result ({'; '.join(flags)})"] if flags else [])
        cells = [c.backend, c.precision, c.arch, c.image_size, "" if c.threads is None else c.threads, " ".join(notes)]
        cells += [_cell_value(latest.metrics.get(n), prev.metrics.get(n) if prev else None) for n in metrics]
        cells += [_cell_value(latest.fidelity.get(n), prev.fidelity.get(n) if prev else None) for n in fidelity]
        cells += ["" if latest.speedup.get(n) is None else f"{latest.speedup[n]:.2f}x" for n in speedup]
        out.append(_line(cells + [latest.baseline or "", (latest.commit or "")[:7],
                                  latest.timestamp[:16].replace("T", " ")]))
    out.append("")
    for image in images:
        out += [f"![{Path(image).stem}]({image})", ""]
    return "\n".join(out)


def skipped_markdown(device_id: str, entries: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table of the combinations not measured on `device_id`."""
    lines = [f"### Not measured on {device_id}", "",
             *_table(["backend", "precision", "arch", "size", "model", "reason", "date"])]
    lines += [_line([e.get("backend"), e.get("precision"), e.get("arch"), e.get("image_size"), e.get("model") or "",
                     e.get("reason"), str(e.get("timestamp", ""))[:16].replace("T", " ")]) for e in entries]
    return "\n".join(lines + [""])


def write_report(results_dir: str | Path, out_dir: str | Path, *, plots: bool = True) -> list[Path]:
    """Write ``<out_dir>/README.md`` and, with `plots`, two PNGs per device.

    PNGs: ``<device_id>-latency.png`` (latest p50 per configuration) and
    ``<device_id>-history.png`` (p50 over time). Each device's section ends with the
    combinations still not measured there (``<results_dir>/*.skipped.json``).
    Returns the written paths, markdown first.

    Raises:
        ValueError: `results_dir` holds no result rows.
        ResultsDirError: `results_dir` exists but is not a folder.
        ImportError: `plots` is True and matplotlib is not installed (nothing is written).
    """
    rows = load_rows(results_dir)
    if not rows:
        raise ValueError(f"no benchmark results found in {str(results_dir)!r}")
    if plots:
        require_matplotlib()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_device: dict[str, list[ResultRow]] = {}
    for row in rows:
        by_device.setdefault(row.device_id, []).append(row)
    skips = load_skips(results_dir)
    sections: list[str] = []
    pngs: list[Path] = []
    for dev in sorted(set(by_device) | set(skips)):
        dev_rows = by_device.get(dev, [])
        if dev_rows:
            latest = [pair[0] for pair in latest_pairs(dev_rows)]
            images = [made for made in (
                plot_latency(latest, out / f"{dev}-latency.png", title=f"{dev}: latest"),
                plot_history(dev_rows, out / f"{dev}-history.png", title=f"{dev}: history"),
            ) if made is not None] if plots else []
            pngs += images
            sections.append(device_markdown(dev, dev_rows, [p.name for p in images]))
        still = open_skips(skips.get(dev, []), dev_rows)
        if still:
            sections.append(skipped_markdown(dev, still))
    md_path = out / "README.md"
    header = ["# Benchmark results", "", f"Generated {utc_now_iso()} from `{Path(results_dir).name}/`. {_HEADER}", ""]
    md_path.write_text("\n".join(header + sections), encoding="utf-8")
    return [md_path, *pngs]


def _ms(value: Any) -> str:
    return "" if not isinstance(value, TimingStats) else f"{value.p50_ms:.0f}" if value.p50_ms >= 100 else \
        f"{value.p50_ms:.1f}" if value.p50_ms >= 10 else f"{value.p50_ms:.2f}"


def _num(value: Any, fmt: str) -> str:
    return "" if value is None else format(float(value), fmt)


def summary_markdown(rows: Sequence[ResultRow], skipped: Sequence[Any] = (), failed: Sequence[Any] = ()) -> str:
    """Markdown: one line per row (p50 latencies in ms, speed-up of the encoder and first mask
    vs the baseline, fidelity vs the reference), then the skipped and failed combinations."""
    lines = ["(nothing was measured)"] if not rows else []
    if rows:
        everything = next((n for r in rows for n in r.metrics if n.startswith("everything_")), None)
        head = (["backend", "precision"] + [label for _, label in _SUMMARY_TIMES]
                + ([everything.replace("everything_", "everything ")] if everything else [])
                + ["cold start", "peak RSS MB", "steady RSS MB", "model MB", "INT8 ops (enc.)", "speedup enc / first",
                   "emb. cosine", "mask IoU mean / min"])
        lines += ["p50 latency in ms; speed-up vs " + (rows[0].baseline or "the baseline")
                  + "; fidelity vs torch fp32 (or the backend's fp32 without torch weights)", "", *_table(head)]
        for row in rows:
            m, f, s = row.metrics, row.fidelity, row.speedup
            int8, kept = m.get("encoder_int8_ops"), m.get("encoder_float_ops")  # "69 of 89" INT8 of quantizable
            cells = [row.config.backend, row.config.precision] + [_ms(m.get(name)) for name, _ in _SUMMARY_TIMES]
            cells += [_ms(m.get(everything))] if everything else []
            cells += [_ms(m.get("cold_start")), _num(m.get("peak_rss_mb"), ".0f"), _num(m.get("steady_rss_mb"), ".0f"),
                      _num(m.get("model_mb"), ".1f"),
                      "" if int8 is None else f"{int8:.0f}" if kept is None else f"{int8:.0f} of {int8 + kept:.0f}",
                      f"{s['encoder']:.2f}x / {s.get('first_mask', float('nan')):.2f}x" if "encoder" in s else "",
                      _num(f.get("embedding_cosine"), ".4f"),
                      f"{f['mask_iou_mean']:.3f} / {f['mask_iou_min']:.3f}" if "mask_iou_mean" in f else ""]
            if row_flags(row):  # figures that cannot all be true: shown bracketed, not as results
                cells = [f"{cells[0]} (INCONSISTENT)", cells[1]] + [f"({c})" if c else c for c in cells[2:]]
            lines.append("| " + " | ".join(cells) + " |")
        load = [r.metrics["load_avg_1m"] for r in rows if r.metrics.get("load_avg_1m") is not None]
        if load:
            usable = (rows[0].device.get("cpu") or {}).get("usable_cpus", "?")
            lines += ["", f"system load average while measuring: {min(load):.1f} .. {max(load):.1f} "
                          f"(on {usable} usable CPUs)"]
        flagged = flag_lines(rows)
        lines += ["", *flagged] if flagged else []
    lines.append("")
    lines += [f"skipped {x.backend} {x.precision}: {x.reason}" for x in skipped]
    lines += [f"FAILED  {x.backend} {x.precision}: {x.reason}" for x in failed]
    return "\n".join(lines)
