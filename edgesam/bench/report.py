"""Markdown + PNG report over the JSONL result history.

For each device: a table with the latest run of every configuration and, per metric, the
change in percent against the previous run of the same configuration; a bar chart of the
latest latencies and a line chart of the history (see `plots`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from .consistency import row_flags
from .plots import plot_history, plot_latency, require_matplotlib
from .results import Metric, ResultRow, load_rows, utc_now_iso
from .timing import TimingStats

__all__ = ["latest_pairs", "metric_value", "percent_change", "device_markdown", "write_report"]

_CONFIG_COLUMNS = ("backend", "precision", "arch", "size", "threads", "notes")


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

    def order(pair: tuple[ResultRow, ResultRow | None]) -> tuple[Any, ...]:
        c = pair[0].config
        return (c.arch, c.image_size, c.backend, c.precision, c.threads or 0, c.quick,
                c.key()[-1])

    return sorted(pairs, key=order)


def _fmt(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.4f}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _device_summary(fp: dict[str, Any]) -> str:
    cpu = fp.get("cpu") or {}
    model = str(cpu.get("model") or "unknown CPU")
    if cpu.get("microarch"):
        model += f" ({cpu['microarch']})"
    parts = [model, f"{cpu.get('usable_cpus', '?')} usable / {cpu.get('logical_cpus', '?')} "
             f"logical CPUs"]
    if fp.get("ram_total_mb"):
        parts.append(f"{fp['ram_total_mb'] / 1024:.1f} GiB RAM")
    if cpu.get("isa"):
        parts.append("ISA: " + " ".join(cpu["isa"]))
    gpus = fp.get("gpus") or []
    parts.append("GPU: " + (", ".join(g.get("name", "?") for g in gpus) if gpus else "none"))
    if fp.get("jetson"):
        jet = fp["jetson"]
        parts.append(f"{jet.get('model')} power mode {jet.get('power_mode')}")
    parts.append(f"Python {fp.get('python', '?')}")
    packages = fp.get("packages") or {}
    parts += [f"{name} {ver}" for name, ver in packages.items() if ver]
    return " · ".join(_cell(p) for p in parts)


def _cell_value(value: Metric | None, old: Metric | None) -> str:
    """``"298 ms (-5.6%)"``: p50 or scalar, plus change vs the previous run when known."""
    if value is None:
        return ""
    is_time = isinstance(value, TimingStats)
    text = _fmt(metric_value(value)) + (" ms" if is_time else "")
    if old is not None and isinstance(old, TimingStats) == is_time:
        pct = percent_change(metric_value(value), metric_value(old))
        if pct is not None:
            text += f" ({pct:+.1f}%)"
    return text


def _columns(pairs: Sequence[tuple[ResultRow, ResultRow | None]]) -> tuple[list[str], ...]:
    """Metric, fidelity and speedup names in order of first appearance."""
    metrics: list[str] = []
    fidelity: list[str] = []
    speedup: list[str] = []
    for latest, _ in pairs:
        for names, source in ((metrics, latest.metrics), (fidelity, latest.fidelity),
                              (speedup, latest.speedup)):
            names += [n for n in source if n not in names]
    return metrics, fidelity, speedup


def device_markdown(device_id: str, rows: Sequence[ResultRow],
                    images: Sequence[str] = ()) -> str:
    """Markdown section for one device: summary line, results table, image links.

    One table row per configuration (its latest run). Timing cells show p50 in ms, scalar
    cells the value; both followed by the change in percent vs the configuration's previous
    run, e.g. ``298 ms (-5.6%)``.
    """
    pairs = latest_pairs(rows)
    newest = max(rows, key=lambda r: r.when)
    metrics, fidelity, speedup = _columns(pairs)
    columns = (list(_CONFIG_COLUMNS) + metrics + [f"fidelity: {n}" for n in fidelity]
               + [f"speedup: {n}" for n in speedup] + ["baseline", "commit", "date"])
    out = [f"## {device_id}", "", _device_summary(newest.device), "",
           "| " + " | ".join(_cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    for latest, previous in pairs:
        c = latest.config
        flags = row_flags(latest)
        notes = " ".join([f"{k}={v}" for k, v in sorted(c.extra.items())]
                         + (["quick"] if c.quick else [])
                         + ([f"INCONSISTENT, not a result ({'; '.join(flags)})"] if flags else []))
        cells = [c.backend, c.precision, c.arch, str(c.image_size),
                 "" if c.threads is None else str(c.threads), notes]
        cells += [_cell_value(latest.metrics.get(n), previous.metrics.get(n) if previous else None)
                  for n in metrics]
        cells += [_cell_value(latest.fidelity.get(n),
                              previous.fidelity.get(n) if previous else None) for n in fidelity]
        cells += ["" if latest.speedup.get(n) is None else f"{latest.speedup[n]:.2f}x"
                  for n in speedup]
        cells += [latest.baseline or "", (latest.commit or "")[:7],
                  latest.timestamp[:16].replace("T", " ")]
        out.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    out.append("")
    for image in images:
        out += [f"![{Path(image).stem}]({image})", ""]
    return "\n".join(out)


def write_report(results_dir: str | Path, out_dir: str | Path, *,
                 plots: bool = True) -> list[Path]:
    """Write ``<out_dir>/README.md`` and, with `plots`, two PNGs per device.

    PNGs: ``<device_id>-latency.png`` (latest p50 per configuration) and
    ``<device_id>-history.png`` (p50 over time). Returns the written paths, markdown first.

    Raises:
        ValueError: `results_dir` holds no result rows.
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
    sections: list[str] = []
    pngs: list[Path] = []
    for dev in sorted(by_device):
        dev_rows = by_device[dev]
        images: list[Path] = []
        if plots:
            latest = [pair[0] for pair in latest_pairs(dev_rows)]
            for made in (plot_latency(latest, out / f"{dev}-latency.png", title=f"{dev}: latest"),
                         plot_history(dev_rows, out / f"{dev}-history.png",
                                      title=f"{dev}: history")):
                if made is not None:
                    images.append(made)
        pngs += images
        sections.append(device_markdown(dev, dev_rows, [p.name for p in images]))
    header = ["# Benchmark results", "",
              f"Generated {utc_now_iso()} from `{Path(results_dir).name}/`. Timings are medians "
              "(p50) of in-process runs after warm-up. Each row is the latest run of a "
              "configuration; the percentage in brackets is the change against its previous "
              "run (negative = lower, i.e. faster for latencies). *speedup* = baseline p50 / "
              "this p50. Rows marked INCONSISTENT have figures that cannot all be true "
              "(first mask below the encoder, p50 too unstable, load above the usable CPUs): "
              "rerun them on a quiet machine.", ""]
    md_path = out / "README.md"
    md_path.write_text("\n".join(header + sections), encoding="utf-8")
    return [md_path, *pngs]
