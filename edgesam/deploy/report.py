"""The candidate table (screen and markdown), ``deploy-report.md`` and ``deploy.png``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from edgesam.deploy.choose import SPEED_METRIC, CandidateResult

__all__ = ["PLOT_FILE", "REPORT_FILE", "candidate_table", "write_deploy_report", "write_plot"]

REPORT_FILE = "deploy-report.md"
PLOT_FILE = "deploy.png"
_COLUMNS = ("candidate", "encoder p50", "first mask p50/p90", "1-pt decode p50", "mask IoU mean/min",
            "cosine", "RSS MiB", "load", "status")  # fmt: skip


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _row(r: CandidateResult) -> list[str]:
    first = r.latency_ms.get("first_mask")
    fm = "-" if first is None else f"{first['p50_ms']:.1f}/{first['p90_ms']:.1f}"
    fid = r.fidelity
    iou = "-" if fid is None else f"{fid['mask_iou_mean']:.4f}/{fid['mask_iou_min']:.3f}"
    cos = "-" if fid is None else f"{fid['embedding_cosine_mean']:.4f}"
    load = "-" if r.load_avg_1m is None else f"{r.load_avg_1m:.1f}{'!' if r.under_load else ''}"
    status = r.status.upper() if r.status == "chosen" else r.status
    if r.reason:
        status += f": {r.reason}"
    rss = "-" if r.rss_mb is None else f"{r.rss_mb:.0f}"
    return [r.name, _ms(r.p50("encoder")), fm, _ms(r.p50("decode_point")), iou, cos, rss, load, status]


def candidate_table(results: Sequence[CandidateResult], *, markdown: bool = False) -> str:
    """Latency (ms), fidelity and verdict of every candidate, one line each.

    ``load`` is the 1-minute load average when timed; ``!`` flags figures taken under load.
    """
    rows = [list(_COLUMNS)] + [_row(r) for r in results]
    if markdown:
        out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(_COLUMNS)]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows[1:]]
        return "\n".join(out)
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1] for row in rows)


def write_deploy_report(folder: Path, record: Mapping[str, Any], results: Sequence[CandidateResult]) -> Path:
    """``deploy-report.md``: what was chosen, on what, and every candidate's figures."""
    chosen = next(r for r in results if r.status == "chosen")
    fid = chosen.fidelity or {}
    lines = [
        f"# edgesam deploy: {record['model']} ({record['arch']}, {record['image_size']} px)",
        "",
        f"**Chosen: {chosen.name}** ({chosen.backend}, {chosen.precision}): first mask "
        f"{_ms(chosen.p50())} ms p50, encoder {_ms(chosen.p50('encoder'))} ms, 1-point decode "
        f"{_ms(chosen.p50('decode_point'))} ms; mask IoU vs fp32 torch {fid.get('mask_iou_mean', float('nan')):.4f} "
        f"(min {fid.get('mask_iou_min', float('nan')):.4f}, p5 {fid.get('mask_iou_p5', float('nan')):.4f}), "
        f"embedding cosine {fid.get('embedding_cosine_mean', float('nan')):.4f}.",
        "",
        f"- Requirement: mean mask IoU >= {record['min_mask_iou']} against fp32 torch"
        + (f", resident memory <= {record['max_rss_mb']} MiB" if record.get("max_rss_mb") else ""),
        f"- Held-out images: {record['heldout']}",
        f"- Calibration (INT8): {record.get('calibration') or 'the quantizer default'}",
        f"- Device: `{record['device_id']}`, {record['threads']} thread(s); load average "
        f"{record.get('load_avg_1m_start')} at start. Figures flagged `!` were taken under load.",
        f"- Time budget {record['budget_min']} min, used {record['seconds'] / 60:.1f} min.",
        "",
        "Run it: `SamPredictor.from_bundle(DIR)` (no backend argument) uses this choice.",
        "",
        "## Candidates",
        "",
        f"Latencies in ms; the choice minimises `{SPEED_METRIC}` p50.",
        "",
        candidate_table(results, markdown=True),
        "",
    ]
    path = folder / REPORT_FILE
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def write_plot(folder: Path, results: Sequence[CandidateResult], min_mask_iou: float) -> Path | None:
    """``deploy.png``: first-mask latency vs mean mask IoU, the chosen point marked (None without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    measured = [r for r in results if r.p50() is not None and r.mask_iou is not None]
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=100)
    # labels of points at about the same fidelity alternate above and below, so neighbours do not overlap
    for i, r in enumerate(sorted(measured, key=lambda r: (round(r.mask_iou or 0.0, 3), r.p50() or 0.0))):
        chosen = r.status == "chosen"
        ax.scatter([r.p50()], [r.mask_iou], s=160 if chosen else 40, marker="*" if chosen else "o",
                   color="tab:red" if chosen else ("tab:blue" if r.status == "passed" else "tab:gray"), zorder=3)
        ax.annotate(r.name + (" (chosen)" if chosen else ""), (r.p50(), r.mask_iou), fontsize=8,
                    xytext=(4, 4 if i % 2 == 0 else -11), textcoords="offset points")  # fmt: skip
    ax.axhline(min_mask_iou, color="tab:green", linestyle="--", linewidth=1, label=f"min mask IoU {min_mask_iou}")
    ax.set_xlabel(f"{SPEED_METRIC} p50 (ms)")
    ax.set_ylabel("mask IoU mean vs fp32 torch")
    ax.set_title("edgesam deploy: latency vs fidelity")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = folder / PLOT_FILE
    fig.savefig(path)
    plt.close(fig)
    return path
