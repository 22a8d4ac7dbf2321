"""A compact markdown table of one run, for the terminal (the full history is `write_report`'s)."""

from __future__ import annotations

from typing import Any, Sequence

from .consistency import flag_lines, row_flags
from .results import ResultRow
from .timing import TimingStats

__all__ = ["summary_markdown"]

_TIMES = (("encoder", "encoder"), ("first_mask", "first mask"), ("decode_point", "1 point"),
          ("decode_box", "1 box"), ("decode_box16", "16 boxes"))


def _ms(value: Any) -> str:
    if not isinstance(value, TimingStats):
        return ""
    p50 = value.p50_ms
    return f"{p50:.0f}" if p50 >= 100 else f"{p50:.1f}" if p50 >= 10 else f"{p50:.2f}"


def _num(value: Any, fmt: str) -> str:
    return "" if value is None else format(float(value), fmt)


def _int8_share(metrics: Any) -> str:
    """``"69 of 89"``: encoder ops in INT8 out of the quantizable ones (blank if not quantized)."""
    int8 = metrics.get("encoder_int8_ops")
    if int8 is None:
        return ""
    kept = metrics.get("encoder_float_ops")
    return f"{int8:.0f}" if kept is None else f"{int8:.0f} of {int8 + kept:.0f}"


def summary_markdown(rows: Sequence[ResultRow], skipped: Sequence[Any] = (),
                     failed: Sequence[Any] = ()) -> str:
    """Markdown: one line per row (p50 latencies in ms, speed-up of the encoder and first mask
    vs the baseline, fidelity vs the reference), then the skipped and failed combinations."""
    if not rows:
        lines = ["(nothing was measured)"]
    else:
        everything = next((n for r in rows for n in r.metrics if n.startswith("everything_")), None)
        head = (["backend", "precision"] + [label for _, label in _TIMES]
                + ([everything.replace("everything_", "everything ")] if everything else [])
                + ["cold start", "peak RSS MB", "steady RSS MB", "model MB", "INT8 ops (enc.)",
                   "speedup enc / first", "emb. cosine", "mask IoU mean / min"])
        lines = ["p50 latency in ms; speed-up vs " + (rows[0].baseline or "the baseline")
                 + "; fidelity vs torch fp32 (or the backend's fp32 without torch weights)", "",
                 "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in rows:
            m, f, s = row.metrics, row.fidelity, row.speedup
            cells = [row.config.backend, row.config.precision]
            cells += [_ms(m.get(name)) for name, _ in _TIMES]
            if everything:
                cells.append(_ms(m.get(everything)))
            cells += [_ms(m.get("cold_start")), _num(m.get("peak_rss_mb"), ".0f"),
                      _num(m.get("steady_rss_mb"), ".0f"),
                      _num(m.get("model_mb"), ".1f"), _int8_share(m)]
            cells.append(f"{s['encoder']:.2f}x / {s.get('first_mask', float('nan')):.2f}x"
                         if "encoder" in s else "")
            cells.append(_num(f.get("embedding_cosine"), ".4f"))
            cells.append(f"{f['mask_iou_mean']:.3f} / {f['mask_iou_min']:.3f}"
                         if "mask_iou_mean" in f else "")
            if row_flags(row):  # figures that cannot all be true: shown bracketed, not as results
                cells = [f"{cells[0]} (INCONSISTENT)", cells[1]] + [f"({c})" if c else c for c in cells[2:]]
            lines.append("| " + " | ".join(cells) + " |")
        load = [r.metrics.get("load_avg_1m") for r in rows if r.metrics.get("load_avg_1m") is not None]
        if load:
            lines += ["", f"system load average while measuring: {min(load):.1f} .. {max(load):.1f} "
                          f"(on {(rows[0].device.get('cpu') or {}).get('usable_cpus', '?')} usable CPUs)"]
        flagged = flag_lines(rows)
        if flagged:
            lines += ["", *flagged]
    lines.append("")
    lines += [f"skipped {x.backend} {x.precision}: {x.reason}" for x in skipped]
    lines += [f"FAILED  {x.backend} {x.precision}: {x.reason}" for x in failed]
    return "\n".join(lines)
