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
    """``deploy.png``: first-mask latency vs mean mask IoU, the chosen point marked, every point
    labelled beside itself (see `edgesam.deploy.plot`); None without matplotlib."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return None
    from edgesam.deploy.plot import save_deploy_plot

    return save_deploy_plot(folder / PLOT_FILE, results, min_mask_iou)
