"""Candidate results and the choice: the fastest candidate that passes every requirement.

Speed is the median ``first_mask`` latency (a new image and one click: what a user waits
for); a candidate passes when its mean mask IoU against fp32 torch reaches ``min_mask_iou``
and, when both are known, its resident memory is within ``max_rss_mb``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

__all__ = ["SPEED_METRIC", "CandidateResult", "choose"]

#: The latency the choice minimises (p50 of this case).
SPEED_METRIC = "first_mask"


@dataclass
class CandidateResult:
    """What was measured for one candidate, or why it was not.

    Attributes:
        name, backend, precision: see :class:`~edgesam.deploy.candidates.CandidateSpec`.
        options: the backend constructor keywords it ran with (threads included).
        status: ``"chosen"``, ``"passed"`` (faithful, not the fastest), ``"rejected"``
            (measured, fails a requirement), ``"failed"`` (could not be built or run) or
            ``"skipped"`` (not tried).
        reason: why it was rejected, failed or skipped (None otherwise).
        latency_ms: case -> ``TimingStats.to_dict()`` (``encoder``, ``first_mask``, ``decode_point``).
        fidelity: :meth:`edgesam.fidelity.FidelityReport.to_dict` against fp32 torch, or None.
        rss_mb: resident memory of the candidate in MiB when measured, else None.
        load_avg_1m: 1-minute load average when it was timed.
        under_load: the load average exceeded the usable CPUs' half: figures may be slow.
        seconds: wall time spent on it (build, gate and timing).
        bundle: folder of the bundle it ran (None for torch).
    """

    name: str
    backend: str
    precision: str
    options: dict[str, Any] = field(default_factory=dict)
    status: str = "skipped"
    reason: str | None = None
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    fidelity: dict[str, Any] | None = None
    rss_mb: float | None = None
    load_avg_1m: float | None = None
    under_load: bool = False
    seconds: float = 0.0
    bundle: str | None = None

    def p50(self, case: str = SPEED_METRIC) -> float | None:
        """Median latency of ``case`` in ms, None when not measured."""
        stats = self.latency_ms.get(case)
        return None if stats is None else float(stats["p50_ms"])

    @property
    def mask_iou(self) -> float | None:
        """Mean mask IoU against fp32 torch, None when not measured."""
        return None if self.fidelity is None else float(self.fidelity["mask_iou_mean"])

    def to_dict(self) -> dict[str, Any]:
        """JSON form (stored under ``deploy.candidates`` in ``edgesam.json``)."""
        return asdict(self)


def choose(results: Sequence[CandidateResult], *, min_mask_iou: float,
           max_rss_mb: float | None = None) -> CandidateResult | None:  # fmt: skip
    """Mark each measured result passed or rejected and the fastest passing one chosen.

    Torch candidates are measured for comparison but never chosen (a bundle runs ONNX graphs).
    Returns the chosen result, or None when none passes.
    """
    passing: list[CandidateResult] = []
    for r in results:
        if r.status not in ("passed", "chosen", "rejected") or r.fidelity is None or r.p50() is None:
            continue
        iou = r.mask_iou
        if iou is None or not iou >= min_mask_iou:
            r.status, r.reason = "rejected", f"mask IoU mean {iou:.4f} < {min_mask_iou}"
        elif max_rss_mb is not None and r.rss_mb is not None and r.rss_mb > max_rss_mb:
            r.status, r.reason = "rejected", f"resident memory {r.rss_mb:.0f} MiB > --max-rss-mb {max_rss_mb:g}"
        elif r.backend == "torch":
            r.status, r.reason = "passed", "torch is measured for comparison; a bundle runs ONNX graphs"
        else:
            r.status, r.reason = "passed", None
            passing.append(r)
    if not passing:
        return None
    best = min(passing, key=lambda r: r.p50())  # type: ignore[arg-type, return-value]
    best.status = "chosen"
    for r in passing:
        if r is not best:
            r.reason = f"passes; {r.p50():.1f} ms vs {best.p50():.1f} ms for {best.name}"
    return best
