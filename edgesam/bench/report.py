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
from .labels import RAN_KEY, flag_kinds, format_ms, ran_label
from .plots import plot_history, plot_latency, require_matplotlib
from .results import Metric, ResultRow, load_rows, utc_now_iso
from .skips import load_skips, open_skips
from .timing import TimingStats

__all__ = ["MAIN_COLUMNS", "device_markdown", "latest_pairs", "metric_value", "percent_change", "skipped_markdown",
           "summary_markdown", "write_report"]

_HEADER = ("Timings are medians (p50) of in-process runs after warm-up. Each row is the latest run of a configuration; "
           "the percentage in brackets is the change against its previous run (negative = lower, i.e. faster for "
           "latencies). *what ran* is the precision the backend reports it computed in (INT8 graphs keep some "
           "operations in float). Fidelity (mask IoU, embedding cosine) is against torch fp32. Rows marked "
           "INCONSISTENT have figures that cannot all be true (first mask below the encoder, p50 too unstable, load "
           "above the usable CPUs): rerun them on a quiet machine. Each device's second table holds every other "
           "figure; *speed-up* = baseline p50 / this p50.")
#: Main-table figure columns of `device_markdown` (plus "everything" after the first four timings).
_MAIN_TIMES = (("encoder", "encoder"), ("first_mask", "first mask"), ("decode_point", "1 point"),
               ("decode_box16", "16 boxes"), ("cold_start", "cold start"))
_MAIN_FIDELITY = (("mask_iou_mean", "mask IoU"), ("embedding_cosine", "emb. cosine"))
MAIN_COLUMNS = ("backend", "precision", "what ran", "model", "encoder", "first mask", "1 point", "16 boxes",
                "everything", "cold start", "steady RSS MB", "mask IoU", "emb. cosine", "flags")
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


def _cell_value(value: Metric | None, old: Metric | None, *, fidelity: bool = False) -> str:
    """``"298 ms (-5.6%)"``: p50 or scalar, plus change vs the previous run when known.

    Fidelity figures always show four decimals (``1.0000``, ``0.9924``); whole numbers
    (operator counts) show none."""
    if value is None:
        return ""
    is_time = isinstance(value, TimingStats)
    number = metric_value(value)
    text = format_ms(number) if is_time else f"{number:.4f}" if fidelity else \
        f"{number:.0f}" if float(number).is_integer() else _fmt(number)
    pct = None if old is None or isinstance(old, TimingStats) != is_time else \
        percent_change(metric_value(value), metric_value(old))
    return text if pct is None else f"{text} ({pct:+.1f}%)"


def _model_cell(config: Any) -> str:
    return " ".join([config.arch, f"{config.image_size}px"] + ([f"{config.threads}t"] if config.threads else [])
                    + (["(quick)"] if config.quick else []))


def _everything_name(metrics: Mapping[str, Any]) -> str | None:
    return next((n for n in metrics if n.startswith("everything_") and isinstance(metrics[n], TimingStats)), None)


def _main_columns(pairs: Sequence[tuple[ResultRow, ResultRow | None]]) -> list[tuple[str, Any]]:
    """(header, row -> (kind, name)) of the main table's figure columns; kind picks metrics or fidelity."""
    everything = sorted({n for latest, _ in pairs for n in [_everything_name(latest.metrics)] if n})
    head = "everything" + (f" ({everything[0].removeprefix('everything_')})" if len(everything) == 1 else "")
    cols: list[tuple[str, Any]] = [(label, ("metrics", name)) for name, label in _MAIN_TIMES[:4]]
    cols.append((head, lambda r: ("metrics", _everything_name(r.metrics))))
    cols += [(label, ("metrics", name)) for name, label in _MAIN_TIMES[4:]]
    cols.append(("steady RSS MB", ("metrics", "steady_rss_mb")))
    cols += [(label, ("fidelity", name)) for name, label in _MAIN_FIDELITY]
    return cols


def _detail_cell(names: Sequence[str], latest: Mapping[str, Any], prev: Mapping[str, Any] | None,
                 fidelity: bool = False) -> str:
    return "; ".join(f"{n} {_cell_value(latest[n], prev.get(n) if prev else None, fidelity=fidelity)}"
                     for n in names if n in latest)


def device_markdown(device_id: str, rows: Sequence[ResultRow], images: Sequence[str] = ()) -> str:
    """Markdown section for one device: summary line, main table, flagged rows, details table, images.

    One row per configuration (its latest run) in each table. The main table holds what a
    reader compares (`MAIN_COLUMNS`): p50 latencies, steady RSS, fidelity and the
    consistency flags; the details table every other figure of the row, its speed-ups, settings,
    baseline, commit and date. Figures are followed by the change in percent vs the
    configuration's previous run, e.g. ``298 ms (-5.6%)``. Every figure stays in the JSONL.
    """
    pairs = latest_pairs(rows)
    columns = _main_columns(pairs)
    table: list[list[Any]] = []
    shown: list[set[str]] = []
    for latest, prev in pairs:
        c, flags = latest.config, row_flags(latest)
        cells: list[Any] = [c.backend, c.precision, ran_label(c), _model_cell(c)]
        used: set[str] = set()
        for _, pick in columns:  # _ is the header: "everything (8pps)" when every row ran the same grid
            kind, name = pick(latest) if callable(pick) else pick
            source, before = (latest.metrics, prev.metrics if prev else None) if kind == "metrics" else \
                (latest.fidelity, prev.fidelity if prev else None)
            used |= {f"{kind}:{name}"} if name else set()
            text = "" if not name else _cell_value(source.get(name), before.get(name) if before else None,
                                                   fidelity=kind == "fidelity")
            if callable(pick) and text and "(" not in _ and name:  # "everything" of mixed grids: say which
                text += f" ({name.removeprefix('everything_')})"
            cells.append(text)
        shown.append(used)
        table.append(cells + ["INCONSISTENT: " + ", ".join(flag_kinds(flags)) if flags else ""])
    head = ["backend", "precision", "what ran", "model"] + [h for h, _ in columns] + ["flags"]
    keep = [i for i in range(len(head)) if i < 4 or any(row[i] for row in table)]  # no all-empty columns
    out = [f"## {device_id}", "", _device_summary(max(rows, key=lambda r: r.when).device), "",
           *_table([head[i] for i in keep]), *[_line([row[i] for i in keep]) for row in table]]
    flagged = [(latest, row_flags(latest)) for latest, _ in pairs if row_flags(latest)]
    if flagged:
        out += ["", *[f"- {r.config.backend} {ran_label(r.config)} {_model_cell(r.config)}: "
                      f"INCONSISTENT, not a result ({'; '.join(_esc(f) for f in flags)})" for r, flags in flagged]]
    out += ["", "Details (every other figure; all of them are in the JSONL):", "",
            *_table(["backend", "precision", "model", "settings", "other timings", "other figures",
                     "other fidelity", "speed-up vs baseline", "baseline", "commit", "date"])]
    for (latest, prev), used in zip(pairs, shown):
        c = latest.config
        timings = [n for n, v in latest.metrics.items() if isinstance(v, TimingStats) and f"metrics:{n}" not in used]
        scalars = [n for n, v in latest.metrics.items()
                   if not isinstance(v, TimingStats) and f"metrics:{n}" not in used]
        fidelity = [n for n in latest.fidelity if f"fidelity:{n}" not in used]
        extras = " ".join(f"{k}={v}" for k, v in sorted(c.extra.items()) if k != RAN_KEY)
        out.append(_line([c.backend, c.precision, _model_cell(c), extras,
                          _detail_cell(timings, latest.metrics, prev.metrics if prev else None),
                          _detail_cell(scalars, latest.metrics, prev.metrics if prev else None),
                          _detail_cell(fidelity, latest.fidelity, prev.fidelity if prev else None, True),
                          "; ".join(f"{n} {v:.2f}x" for n, v in latest.speedup.items() if v is not None),
                          latest.baseline or "", (latest.commit or "")[:7], latest.timestamp[:16].replace("T", " ")]))
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
