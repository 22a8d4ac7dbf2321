"""PNG charts of benchmark results (matplotlib, imported lazily, Agg canvas only).

`plot_latency` draws the latest median latency of each configuration (bars, whisker to p90),
one panel per timing metric; `plot_history` draws each configuration's median latency over
time, one panel per timing metric. Neither touches pyplot's global state.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Sequence

from .results import BenchConfig, ResultRow
from .timing import TimingStats

__all__ = ["require_matplotlib", "short_labels", "plot_latency", "plot_history"]

_INSTALL_HINT = ("the benchmark report needs matplotlib for its PNG plots: "
                 "pip install 'edgesam[bench]' (or pip install matplotlib), "
                 "or call write_report(..., plots=False)")


def require_matplotlib() -> Any:
    """Import and return the `matplotlib` module, or raise ImportError with an install hint."""
    try:
        import matplotlib
        from matplotlib.figure import Figure  # noqa: F401  (fails early if broken)
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return matplotlib


def short_labels(configs: Sequence[BenchConfig]) -> dict[tuple[Any, ...], str]:
    """Label each config by backend, precision and only the other fields that differ."""
    fields: list[tuple[str, Any]] = [
        ("arch", lambda c: c.arch),
        ("image_size", lambda c: f"{c.image_size}px"),
        ("threads", lambda c: None if c.threads is None else f"{c.threads}t"),
        ("extra", lambda c: " ".join(f"{k}={v}" for k, v in sorted(c.extra.items())) or None),
        ("quick", lambda c: "(quick)" if c.quick else None),
    ]
    varying = [getter for _, getter in fields if len({getter(c) for c in configs}) > 1]
    return {c.key(): " ".join([c.backend, c.precision] + [e for e in (g(c) for g in varying) if e]) for c in configs}


def _timing_metrics(rows: Sequence[ResultRow]) -> list[str]:
    return list(dict.fromkeys(n for r in rows for n, v in r.metrics.items() if isinstance(v, TimingStats)))


def _precision_colors(rows: Sequence[ResultRow]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    precisions = sorted({r.config.precision for r in rows})
    return {p: cmap(i % 10) for i, p in enumerate(precisions)}


def plot_latency(rows: Sequence[ResultRow], path: Path, *, title: str) -> Path | None:
    """Bar chart of the given (latest) rows' p50 latency per configuration.

    One horizontal panel per timing metric; whiskers reach p90; colour = precision.
    Returns `path`, or None when no row has a timing metric (nothing written).
    """
    require_matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    metrics = _timing_metrics(rows)
    if not metrics:
        return None
    labels = short_labels([r.config for r in rows])
    colors = _precision_colors(rows)
    heights = [max(1, sum(isinstance(r.metrics.get(m), TimingStats) for r in rows))
               for m in metrics]
    fig = Figure(figsize=(9, 1.2 + sum(0.45 * h + 0.9 for h in heights)), layout="constrained")
    axes = fig.subplots(len(metrics), 1, squeeze=False,
                        gridspec_kw={"height_ratios": [h + 2 for h in heights]})[:, 0]
    for ax, metric in zip(axes, metrics):
        entries = sorted((r for r in rows if isinstance(r.metrics.get(metric), TimingStats)),
                         key=lambda r: r.metrics[metric].p50_ms)  # type: ignore[union-attr]
        stats = [r.metrics[metric] for r in entries]
        ypos = list(range(len(entries)))
        p50 = [s.p50_ms for s in stats]  # type: ignore[union-attr]
        upper = [max(0.0, s.p90_ms - s.p50_ms) for s in stats]  # type: ignore[union-attr]
        ax.barh(ypos, p50, xerr=[[0.0] * len(p50), upper], capsize=3,
                color=[colors[r.config.precision] for r in entries])
        ax.set_yticks(ypos, [labels[r.config.key()] for r in entries])
        ax.invert_yaxis()
        for y, value, up in zip(ypos, p50, upper):
            ax.annotate(f"{value:.3g} ms", (value + up, y), xytext=(6, 0),
                        textcoords="offset points", va="center", ha="left", fontsize=8)
        ax.set_xlim(0, max(p + u for p, u in zip(p50, upper)) * 1.25 or 1.0)
        ax.set_title(metric, loc="left", fontsize=10)
        ax.set_xlabel("latency p50 (ms), whisker to p90")
        ax.grid(axis="x", alpha=0.3)
    handles = [Patch(color=c, label=p) for p, c in colors.items()]
    axes[0].legend(handles=handles, title="precision", loc="lower right", fontsize=8)
    fig.suptitle(title, fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path


def _commit_axis(ax: Any, ordered: Sequence[ResultRow], max_ticks: int = 12) -> None:
    """Top axis marking when each git commit was first measured (latest `max_ticks`)."""
    from matplotlib.dates import date2num

    first_seen: dict[str, float] = {}
    for row in ordered:
        if row.commit and row.commit not in first_seen:
            first_seen[row.commit] = float(date2num(row.when))
    if not first_seen:
        return
    marks = sorted(first_seen.items(), key=lambda kv: kv[1])[-max_ticks:]
    lo, hi = ax.get_xlim()
    gap = (hi - lo) / 40  # commits measured closer than this share one tick (labels would overlap)
    spaced: list[tuple[str, float]] = []
    for commit, when in reversed(marks):  # the newest commit of a cluster keeps its label
        if not spaced or spaced[-1][1] - when >= gap:
            spaced.append((commit, when))
    marks = spaced[::-1]
    top = ax.secondary_xaxis("top")
    top.set_xticks([t for _, t in marks], labels=[c[:7] for c, _ in marks], rotation=90,
                   fontsize=7)
    top.set_xlabel("commit", fontsize=8)


def plot_history(rows: Sequence[ResultRow], path: Path, *, title: str) -> Path | None:
    """Line chart of p50 latency over time, one line per configuration, panel per metric.

    `rows` is one device's full history. A top axis marks when each git commit was first
    measured. Returns `path`, or None if nothing to draw.
    """
    require_matplotlib()
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure

    metrics = _timing_metrics(rows)
    if not metrics:
        return None
    ordered = sorted(rows, key=lambda r: r.when)
    configs: dict[tuple[Any, ...], BenchConfig] = {}
    for row in ordered:
        configs.setdefault(row.config.key(), row.config)
    labels = short_labels(list(configs.values()))
    fig = Figure(figsize=(9, 1.5 + 3.2 * len(metrics) + 0.2 * len(configs)), layout="constrained")
    axes = fig.subplots(len(metrics), 1, squeeze=False, sharex=True)[:, 0]
    for ax, metric in zip(axes, metrics):
        for key in configs:
            points = [(r.when, r.metrics[metric], r.commit) for r in ordered
                      if r.config.key() == key and isinstance(r.metrics.get(metric), TimingStats)]
            if not points:
                continue
            xs = [p[0] for p in points]
            ys = [p[1].p50_ms for p in points]  # type: ignore[union-attr]
            ax.plot(xs, ys, marker="o", markersize=4, label=labels[key])
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        ax.set_ylim(bottom=0)
        ax.set_ylabel("p50 (ms)")
        ax.set_title(metric, loc="left", fontsize=10)
        ax.grid(alpha=0.3)
    start, end = ordered[0].when, ordered[-1].when
    if (end - start).total_seconds() < 3600:  # one run: show a day, not matplotlib's 4 years
        axes[0].set_xlim(start - timedelta(hours=12), end + timedelta(hours=12))
    _commit_axis(axes[0], ordered)
    # Below the panels, so long configuration labels never squeeze the plots' time axes.
    fig.legend(*axes[0].get_legend_handles_labels(), fontsize=8, loc="outside lower center",
               ncols=1 if len(configs) > 6 else 2)
    fig.suptitle(title, fontsize=11)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    return path
