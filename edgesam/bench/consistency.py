"""Flags for benchmark rows whose figures cannot all be true (measured under load, noise).

A row is *inconsistent* when:

* ``first_mask`` (``set_image`` + one decode) is faster than ``encoder`` alone, which it
  contains (:data:`FIRST_MASK_TOLERANCE` allows for timer noise);
* a timing's p50 is not a stable figure: its p90 exceeds its p50 by more than the budget
  (:data:`P90_OVER_P50_BUDGET`; only with at least :data:`MIN_RUNS_FOR_SPREAD` timed runs);
* the 1-minute load average when measuring exceeds the usable CPUs (other work competed);
* its speed-ups are taken against a baseline row that is itself inconsistent.

Flagged rows keep their figures in the JSONL history (with a ``flags`` list) and are shown
marked, not as results, by the run summary and the report.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .timing import TimingStats

__all__ = [
    "FIRST_MASK_TOLERANCE",
    "MIN_RUNS_FOR_SPREAD",
    "P90_OVER_P50_BUDGET",
    "baseline_flag",
    "check_metrics",
    "flag_lines",
    "row_flags",
]

#: ``first_mask`` p50 may be this fraction of ``encoder`` p50 before it counts as impossible.
FIRST_MASK_TOLERANCE = 0.97
#: A p50 is a result only while p90 <= budget x p50.
P90_OVER_P50_BUDGET = 1.5
#: Fewer timed runs than this give no meaningful p90.
MIN_RUNS_FOR_SPREAD = 5


def check_metrics(metrics: Mapping[str, Any], usable_cpus: int | None) -> list[str]:
    """Human-readable reasons why these figures are inconsistent ([] when they are not).

    Args:
        metrics: a row's metrics (``TimingStats`` or scalars such as ``load_avg_1m``).
        usable_cpus: CPUs the process could use (from the device fingerprint), or None.
    """
    flags: list[str] = []
    enc, first = metrics.get("encoder"), metrics.get("first_mask")
    if isinstance(enc, TimingStats) and isinstance(first, TimingStats):
        if first.p50_ms < FIRST_MASK_TOLERANCE * enc.p50_ms:
            flags.append(f"first mask {first.p50_ms:.3g} ms is below the encoder {enc.p50_ms:.3g} ms "
                         "it includes")
    for name, value in metrics.items():
        if (isinstance(value, TimingStats) and value.n >= MIN_RUNS_FOR_SPREAD and value.p50_ms > 0
                and value.p90_ms > P90_OVER_P50_BUDGET * value.p50_ms):
            flags.append(f"{name} varied too much to give a p50 (p90 = {value.p90_ms / value.p50_ms:.1f}x "
                         f"p50, budget {P90_OVER_P50_BUDGET:g}x)")
    load = metrics.get("load_avg_1m")
    if isinstance(load, (int, float)) and usable_cpus and load > usable_cpus:
        flags.append(f"load average {load:.1f} was above the {usable_cpus} usable CPUs")
    return flags


def row_flags(row: Any) -> list[str]:
    """The flags of a :class:`~edgesam.bench.results.ResultRow`: those stored with it plus
    those its figures show (so rows written before flags existed are judged too)."""
    usable = (row.device.get("cpu") or {}).get("usable_cpus")
    stored = list(getattr(row, "flags", None) or [])
    return stored + [f for f in check_metrics(row.metrics, usable) if f not in stored]


def baseline_flag(baseline_label: str) -> str:
    """The flag of a row whose speed-ups are against an inconsistent baseline."""
    return f"speed-ups are against {baseline_label}, whose figures are inconsistent"


def flag_lines(rows: Sequence[Any]) -> list[str]:
    """Lines for a summary: one per flagged row, naming the row and every reason."""
    lines = []
    for row in rows:
        flags = row_flags(row)
        if flags:
            lines.append(f"INCONSISTENT {row.config.backend} {row.config.precision}: "
                         + "; ".join(flags) + " (not a result: rerun on a quiet machine)")
    return lines
