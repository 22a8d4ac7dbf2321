"""``deploy.png``: first-mask latency against mean mask IoU, one labelled point per measured candidate.

Candidates often sit close together (two INT8 backends at about the same speed and fidelity),
so labels are placed with the renderer: each label takes the first of a ring of positions
around its own point (near ones first, then farther ones joined to the point by a leader line)
whose text box overlaps no point, no label already placed and not the legend, stays inside the
axes and, without a leader line, is nearer its own point than any other (when none is free, the
position with the least overlap). Matplotlib is imported lazily; pyplot is not used.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

from edgesam.deploy.choose import SPEED_METRIC, CandidateResult

__all__ = ["deploy_figure", "label_candidates", "save_deploy_plot"]

_SIZE_PX = (700, 450)  # figure size at 100 dpi
_AREA = {"chosen": 160.0, "other": 40.0}  # scatter marker areas (points^2)
_COLOR = {"chosen": "tab:red", "passed": "tab:blue", "rejected": "tab:gray"}
_NEAR_GAP_PT = 3.0  # between a marker's edge and its label
_FAR_PT = (16.0, 28.0, 42.0)  # label distances that get a leader line


def label_candidates(radius_pt: float) -> list[tuple[float, float, str, str, bool]]:
    """Positions tried for a label around a point, best first: ``(dx, dy, ha, va, leader)``,
    offsets in points from the point's centre (a marker of radius `radius_pt`)."""
    gap = radius_pt + _NEAR_GAP_PT
    near = [(gap, 0.0, "left", "center"), (-gap, 0.0, "right", "center"), (0.0, gap, "center", "bottom"),
            (0.0, -gap, "center", "top"), (gap * 0.8, gap * 0.8, "left", "bottom"),
            (gap * 0.8, -gap * 0.8, "left", "top"), (-gap * 0.8, gap * 0.8, "right", "bottom"),
            (-gap * 0.8, -gap * 0.8, "right", "top")]
    out = [(dx, dy, ha, va, False) for dx, dy, ha, va in near]
    for dist in _FAR_PT:
        for angle in (30, -30, 150, -150, 90, -90, 0, 180, 60, -60, 120, -120):
            dx, dy = dist * math.cos(math.radians(angle)), dist * math.sin(math.radians(angle))
            ha = "left" if dx > 1 else "right" if dx < -1 else "center"
            va = "bottom" if dy > 1 else "top" if dy < -1 else "center"
            out.append((radius_pt + dx, dy, ha, va, True))
    return out


def _overlap(a: Any, b: Any) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _distance(box: Any, point: Any) -> float:
    dx = max(box.x0 - point[0], 0.0, point[0] - box.x1)
    dy = max(box.y0 - point[1], 0.0, point[1] - box.y1)
    return math.hypot(dx, dy)


def _ambiguous(box: Any, own: Any, centres: Sequence[Any]) -> bool:
    """Whether a label without a leader line is as near another point as its own (it would read as
    that point's label). Points on top of each other cannot be told apart and do not count."""
    near = _distance(box, own)
    return any(_distance(box, c) <= near for c in centres if math.dist(c, own) > 1.0)


def _outside(box: Any, frame: Any) -> float:
    return box.width * box.height - _overlap(box, frame)


def _place(ax: Any, renderer: Any, points: Sequence[tuple[float, float, str, float]], obstacles: list[Any]) -> None:
    """Annotate each ``(x, y, text, radius_pt)`` at its best free position (see module doc)."""
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    px_per_pt = ax.figure.dpi / 72.0
    centres = [ax.transData.transform((x, y)) for x, y, _, _ in points]
    markers = [Bbox.from_extents(cx - r * px_per_pt, cy - r * px_per_pt, cx + r * px_per_pt, cy + r * px_per_pt)
               for (cx, cy), (_, _, _, r) in zip(centres, points)]
    frame = ax.get_window_extent(renderer)
    placed: list[Any] = []
    for i, (x, y, text, radius) in enumerate(points):
        options = label_candidates(radius)
        best: tuple[float, tuple[float, float, str, str, bool]] = (math.inf, options[0])
        for option in options:
            dx, dy, ha, va, leader = option
            probe = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va, fontsize=8)
            probe.get_window_extent(renderer)  # positions the text
            box = Text.get_window_extent(probe, renderer).padded(2)
            probe.remove()
            cost = (sum(_overlap(box, m) for j, m in enumerate(markers) if j != i) * 10.0
                    + _overlap(box, markers[i]) * 10.0 + sum(_overlap(box, p) for p in placed + obstacles)
                    + _outside(box, frame) * 5.0
                    + (0.0 if leader or not _ambiguous(box, centres[i], centres) else 1000.0))
            if cost < best[0]:
                best = (cost, option)
            if cost == 0.0:
                break
        dx, dy, ha, va, leader = best[1]
        arrow = {"arrowstyle": "-", "color": "0.45", "linewidth": 0.7, "shrinkA": 1.0,
                 "shrinkB": radius + 1.0} if leader else None
        ann = ax.annotate(text, (x, y), xytext=(dx, dy), textcoords="offset points", ha=ha, va=va, fontsize=8,
                          arrowprops=arrow, zorder=4)
        ann.get_window_extent(renderer)
        placed.append(Text.get_window_extent(ann, renderer).padded(2))


def deploy_figure(results: Sequence[CandidateResult], min_mask_iou: float) -> Any:
    """First-mask p50 (x) vs mean mask IoU (y) of every measured candidate, as a matplotlib ``Figure``
    of 700 x 450 px at 100 dpi: chosen = red star, passed = blue, rejected = grey, the
    threshold dashed green; each point labelled with its candidate name (see module doc)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    measured = [r for r in results if r.p50() is not None and r.mask_iou is not None]
    fig = Figure(figsize=(_SIZE_PX[0] / 100, _SIZE_PX[1] / 100), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    points = []
    for r in measured:
        kind = "chosen" if r.status == "chosen" else "passed" if r.status == "passed" else "rejected"
        area = _AREA["chosen" if kind == "chosen" else "other"]
        ax.scatter([r.p50()], [r.mask_iou], s=area, marker="*" if kind == "chosen" else "o", color=_COLOR[kind],
                   zorder=3)
        points.append((r.p50(), r.mask_iou, r.name + (" (chosen)" if kind == "chosen" else ""),
                       math.sqrt(area) / 2.0))
    ax.axhline(min_mask_iou, color="tab:green", linestyle="--", linewidth=1)
    ax.margins(x=0.18, y=0.15)  # room for labels beside the outermost points
    if measured and ax.get_xlim()[0] < 0:
        ax.set_xlim(left=0.0)  # no negative latencies on the axis
    ax.set_xlabel(f"{SPEED_METRIC} p50 (ms)")
    ax.set_ylabel("mask IoU mean vs fp32 torch")
    ax.set_title("edgesam deploy: latency vs fidelity")
    ax.grid(True, alpha=0.3)
    handles = [Line2D([], [], linestyle="none", marker="*", markersize=10, color=_COLOR["chosen"], label="chosen"),
               Line2D([], [], linestyle="none", marker="o", color=_COLOR["passed"], label="passed"),
               Line2D([], [], linestyle="none", marker="o", color=_COLOR["rejected"], label="rejected"),
               Line2D([], [], color="tab:green", linestyle="--", linewidth=1, label=f"min mask IoU {min_mask_iou}")]
    legend = ax.legend(handles=handles, loc="best", fontsize=8)
    fig.tight_layout()
    fig.canvas.draw()  # fixes limits, layout and the legend's place before labels are fitted around them
    renderer = fig.canvas.get_renderer()
    # pin the legend where "best" put it: a later draw would move it away from the labels, onto points
    spot = legend.get_window_extent(renderer).transformed(ax.transAxes.inverted())
    legend.remove()
    legend = ax.legend(handles=handles, loc="lower left", bbox_to_anchor=tuple(spot.bounds), borderaxespad=0.0,
                       fontsize=8)
    order = sorted(range(len(points)), key=lambda i: (measured[i].status != "chosen", points[i][0]))
    _place(ax, renderer, [points[i] for i in order], [legend.get_window_extent(renderer).padded(2)])
    return fig


def save_deploy_plot(path: Path, results: Sequence[CandidateResult], min_mask_iou: float) -> Path:
    """`deploy_figure` written as PNG to `path`."""
    deploy_figure(results, min_mask_iou).savefig(path, format="png")
    return path
