"""PNG charts of benchmark results (matplotlib, imported lazily, Agg canvas only).

`latency_figure` draws the latest median latency of each configuration (bars, whisker to p90),
one panel per timing metric; `history_figure` draws each configuration's median latency over
time, one panel per timing metric; `plot_latency` / `plot_history` save them as PNG. Rows
whose figures are inconsistent (`consistency.row_flags`) are drawn hatched (bars) or hollow
(history points), with a legend entry naming why. Neither touches pyplot's global state.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, Sequence

from .consistency import row_flags
from .labels import flag_kinds, format_ms, metric_title, precision_word, short_labels
from .results import BenchConfig, ResultRow
from .timing import TimingStats

__all__ = ["FLAG_HATCH", "history_figure", "latency_figure", "plot_history", "plot_latency",
           "require_matplotlib", "short_labels"]

#: Hatch of a flagged row's bar in the latency chart.
FLAG_HATCH = "///"
_INSTALL_HINT = ("the benchmark report needs matplotlib for its PNG plots: "
                 "pip install 'edgesam[bench]' (or pip install matplotlib), "
                 "or call write_report(..., plots=False)")
_WIDTH_IN = 9.0
_LINE_STYLES = (("o", "-"), ("s", "--"), ("^", ":"), ("D", "-."))
_LOG_SPREAD = 20.0  # history panels whose slowest and fastest points differ more than this use a log scale


def require_matplotlib() -> Any:
    """Import and return the `matplotlib` module, or raise ImportError with an install hint."""
    try:
        import matplotlib
        from matplotlib.figure import Figure  # noqa: F401  (fails early if broken)
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return matplotlib


def _new_figure(height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(_WIDTH_IN, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _timing_metrics(rows: Sequence[ResultRow]) -> list[str]:
    return list(dict.fromkeys(n for r in rows for n, v in r.metrics.items() if isinstance(v, TimingStats)))


def _precision_colors(rows: Sequence[ResultRow]) -> dict[str, Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    precisions = sorted({precision_word(r.config.precision) for r in rows})
    return {p: cmap(i % 10) for i, p in enumerate(precisions)}


def _flag_note(rows: Sequence[ResultRow]) -> str | None:
    """``flagged: figures inconsistent (load)`` for the legend, None when no row is flagged."""
    kinds = list(dict.fromkeys(k for r in rows for k in flag_kinds(row_flags(r))))
    return f"flagged: figures inconsistent ({', '.join(kinds)})" if kinds else None


def _fitted_legend(fig: Any, handles: Sequence[Any], labels: Sequence[str]) -> Any:
    """A legend below the panels with as many columns as fit the figure's width (at least one)."""
    renderer = fig.canvas.get_renderer()
    for ncols in range(min(3, len(handles)), 1, -1):
        legend = fig.legend(handles, labels, fontsize=8, loc="outside lower center", ncols=ncols)
        if legend.get_window_extent(renderer).width <= fig.bbox.width * 0.97:
            return legend
        legend.remove()
    return fig.legend(handles, labels, fontsize=8, loc="outside lower center", ncols=1)


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # bbox "tight" grows the canvas to whatever is drawn: nothing can be cut off at the edges
    fig.savefig(path, format="png", dpi=100, bbox_inches="tight", pad_inches=0.15)
    return path


def latency_figure(rows: Sequence[ResultRow], *, title: str) -> Any:
    """Bar chart (a matplotlib ``Figure``) of the given (latest) rows' p50 latency per configuration.

    One horizontal panel per timing metric; whiskers reach p90; colour = precision; flagged
    rows hatched (`FLAG_HATCH`) and their value labelled "(flagged)". Legend below the panels.
    Returns None when no row has a timing metric.
    """
    require_matplotlib()
    from matplotlib.patches import Patch

    metrics = _timing_metrics(rows)
    if not metrics:
        return None
    labels = short_labels([r.config for r in rows])
    colors = _precision_colors(rows)
    flagged = {r.config.key() for r in rows if row_flags(r)}
    heights = [max(1, sum(isinstance(r.metrics.get(m), TimingStats) for r in rows)) for m in metrics]
    fig = _new_figure(1.6 + sum(0.4 * h + 0.9 for h in heights))
    axes = fig.subplots(len(metrics), 1, squeeze=False,
                        gridspec_kw={"height_ratios": [h + 2 for h in heights]})[:, 0]
    for ax, metric in zip(axes, metrics):
        entries = sorted((r for r in rows if isinstance(r.metrics.get(metric), TimingStats)),
                         key=lambda r: r.metrics[metric].p50_ms)  # type: ignore[union-attr]
        stats = [r.metrics[metric] for r in entries]
        ypos = list(range(len(entries)))
        p50 = [s.p50_ms for s in stats]  # type: ignore[union-attr]
        upper = [max(0.0, s.p90_ms - s.p50_ms) for s in stats]  # type: ignore[union-attr]
        marked = [r.config.key() in flagged for r in entries]
        bars = ax.barh(ypos, p50, xerr=[[0.0] * len(p50), upper], capsize=3,
                       color=[colors[precision_word(r.config.precision)] for r in entries])
        for bar, flag in zip(bars, marked):
            if flag:
                bar.set_hatch(FLAG_HATCH)
                bar.set_edgecolor("0.2")
        ax.set_yticks(ypos, [labels[r.config.key()] for r in entries], fontsize=9)
        ax.invert_yaxis()
        for y, value, up, flag in zip(ypos, p50, upper, marked):
            ax.annotate(format_ms(value) + (" (flagged)" if flag else ""), (value + up, y), xytext=(6, 0),
                        textcoords="offset points", va="center", ha="left", fontsize=8)
        # room right of the longest bar for its value label
        ax.set_xlim(0, max(p + u for p, u in zip(p50, upper)) * (1.45 if any(marked) else 1.3) or 1.0)
        ax.set_title(metric_title(metric), loc="left", fontsize=10)
        ax.set_xlabel("latency p50 (ms), whisker to p90", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    handles = [Patch(facecolor=c, label=p) for p, c in colors.items()]
    note = _flag_note(rows)
    if note:
        handles.append(Patch(facecolor="white", edgecolor="0.2", hatch=FLAG_HATCH, label=note))
    _fitted_legend(fig, handles, [h.get_label() for h in handles])
    fig.suptitle(title, fontsize=11)
    return fig


def plot_latency(rows: Sequence[ResultRow], path: Path, *, title: str) -> Path | None:
    """`latency_figure` saved as PNG at `path`; None when no row has a timing metric (nothing written)."""
    fig = latency_figure(rows, title=title)
    return None if fig is None else _save(fig, path)


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


def history_figure(rows: Sequence[ResultRow], *, title: str) -> Any:
    """Line chart (a matplotlib ``Figure``) of p50 latency over time, one line per configuration,
    one panel per metric.

    `rows` is one device's full history. A top axis marks when each git commit was first
    measured; flagged runs are drawn as hollow points; a panel whose values span more than
    `_LOG_SPREAD` x has a log scale. The legend sits below the panels in as many columns as
    fit. Returns None if nothing to draw.
    """
    require_matplotlib()
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.lines import Line2D

    metrics = _timing_metrics(rows)
    if not metrics:
        return None
    ordered = sorted(rows, key=lambda r: r.when)
    configs: dict[tuple[Any, ...], BenchConfig] = {}
    for row in ordered:
        configs.setdefault(row.config.key(), row.config)
    labels = short_labels(list(configs.values()))
    flagged = {id(r) for r in ordered if row_flags(r)}
    fig = _new_figure(1.8 + 2.6 * len(metrics) + 0.25 * len(configs))
    axes = fig.subplots(len(metrics), 1, squeeze=False, sharex=True)[:, 0]
    for ax, metric in zip(axes, metrics):
        for index, key in enumerate(configs):
            points = [r for r in ordered
                      if r.config.key() == key and isinstance(r.metrics.get(metric), TimingStats)]
            if not points:
                continue
            xs = [r.when for r in points]
            ys = [r.metrics[metric].p50_ms for r in points]  # type: ignore[union-attr]
            # tab10 repeats after ten lines: each further ten get another marker and dash
            style = _LINE_STYLES[(index // 10) % len(_LINE_STYLES)]
            (line,) = ax.plot(xs, ys, marker=style[0], linestyle=style[1], markersize=4, label=labels[key],
                              color=f"C{index % 10}")
            hollow = [(x, y) for x, y, r in zip(xs, ys, points) if id(r) in flagged]
            if hollow:
                ax.plot([p[0] for p in hollow], [p[1] for p in hollow], linestyle="none", marker=style[0],
                        markersize=6, markerfacecolor="white", markeredgecolor=line.get_color(), zorder=3)
        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        values = [y for line in ax.get_lines() for y in line.get_ydata() if y > 0]
        if values and max(values) > _LOG_SPREAD * min(values):  # else the fast configurations lie on the axis
            ax.set_yscale("log")
            ax.set_ylabel("p50 (ms, log scale)")
        else:
            ax.set_ylim(bottom=0)
            ax.set_ylabel("p50 (ms)")
        ax.set_title(metric_title(metric), loc="left", fontsize=10)
        ax.grid(alpha=0.3)
    start, end = ordered[0].when, ordered[-1].when
    if (end - start).total_seconds() < 3600:  # one run: show a day, not matplotlib's 4 years
        axes[0].set_xlim(start - timedelta(hours=12), end + timedelta(hours=12))
    _commit_axis(axes[0], ordered)
    handles, names = axes[0].get_legend_handles_labels()
    note = _flag_note(ordered)
    if note:
        handles.append(Line2D([], [], linestyle="none", marker="o", markersize=6, markerfacecolor="white",
                              markeredgecolor="0.3"))
        names.append("hollow point: " + note)
    # Below the panels, so long configuration labels never squeeze the plots' time axes.
    _fitted_legend(fig, handles, names)
    fig.suptitle(title, fontsize=11)
    return fig


def plot_history(rows: Sequence[ResultRow], path: Path, *, title: str) -> Path | None:
    """`history_figure` saved as PNG at `path`; None if nothing to draw."""
    fig = history_figure(rows, title=title)
    return None if fig is None else _save(fig, path)
