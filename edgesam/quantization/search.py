"""The fewest layers out of INT8: find the smallest prefix of the sensitivity ranking that passes the gate.

The earlier fallback doubled the number of float layers until the gate passed, so it kept up
to twice the layers it needed (on vit_t at 1024 px: 64-79 layers, whole blocks, and no speed
left over bf16). :func:`fewest_float_layers` doubles only until the first pass and then
bisects between the last failing and the first passing count, so it keeps the smallest count
the (nearly monotone) ranking allows at about ``2 * log2(n)`` builds. At every probed count
the float parts are tried in each precision offered (bf16 first where the backend runs it:
faster; then f32), so the result records the precision the gate measured them at.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from edgesam.quantization.accuracy import AccuracyReport

__all__ = ["Probe", "fewest_float_layers"]


@dataclass(frozen=True)
class Probe:
    """One gated candidate: the layers kept in float, the float precision, the report, the folder."""

    kept: tuple[str, ...]
    precision: str
    report: AccuracyReport
    candidate: Any


def fewest_float_layers(
    ranking: Sequence[tuple[str, float]],
    build: Callable[[tuple[str, ...]], Any],
    gate: Callable[[Any, str], AccuracyReport],
    *,
    precisions: Sequence[str] = ("fp32",),
    first: int = 1,
    timer: Callable[[Any, str], float] | None = None,
    on_step: Callable[[str], None] | None = None,
) -> tuple[Probe, tuple[dict[str, Any], ...]]:
    """Smallest ``k`` such that keeping the ``k`` most sensitive layers in float passes the gate.

    Args:
        ranking: ``[(layer, sensitivity)]``, most sensitive first (the caller has already
            seen ``k = 0`` fail).
        build: quantizes with the given layers kept in float; returns the candidate (a folder).
        gate: measures a candidate with its float parts in the given precision.
        precisions: float precisions to try at each count, preferred first (e.g. ``("bf16", "fp32")``).
        first: the first count probed.
        timer: optional ``(candidate, precision) -> encoder ms``, called on passing probes.
        on_step: receives one progress line per probe.

    Returns:
        ``(probe, steps)``: the passing probe with the fewest float layers (or, if even every
        layer in float fails, the last probe), and one dict per probe (count, precision, IoU,
        cosine, ms where timed). ``probe.report.kept_float`` / ``.search`` are filled in.
    """
    names = [name for name, _ in ranking]
    if not names:
        raise ValueError("the sensitivity ranking is empty: there is no layer to keep in float")
    steps: list[dict[str, Any]] = []

    def probe(k: int) -> Probe:
        kept = tuple(names[:k])
        candidate = build(kept)
        result: Probe | None = None
        for precision in precisions:
            report = gate(candidate, precision)
            step: dict[str, Any] = {"kept_float": k, "float_precision": precision, "passed": report.passed,
                                    "mask_iou_mean": report.mask_iou_mean,
                                    "embedding_cosine_mean": report.embedding_cosine_mean}  # fmt: skip
            if report.passed and timer is not None:
                step["encoder_ms"] = timer(candidate, precision)
            steps.append(step)
            if on_step is not None:
                timing = f", encoder {step['encoder_ms']:.0f} ms" if "encoder_ms" in step else ""
                on_step(f"{k} layer(s) in float ({precision}): mean mask IoU {report.mask_iou_mean:.4f} "
                        f"{'pass' if report.passed else 'fail'}{timing}")  # fmt: skip
            if result is None or report.passed or report.mask_iou_mean > result.report.mask_iou_mean:
                result = Probe(kept, precision, report, candidate)
            if report.passed:
                break
        assert result is not None
        return result

    lo, k = 0, max(1, first)
    best: Probe | None = None
    while best is None:
        k = min(k, len(names))
        found = probe(k)
        if found.report.passed:
            best = found
            break
        if k >= len(names):  # every layer in float and still failing
            return _finish(found, steps), tuple(steps)
        lo, k = k, k * 2
    hi = len(best.kept)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        found = probe(mid)
        if found.report.passed:
            best, hi = found, mid
        else:
            lo = mid
    return _finish(best, steps), tuple(steps)


def _finish(probe: Probe, steps: list[dict[str, Any]]) -> Probe:
    report = replace(probe.report, kept_float=probe.kept, search=tuple(dict(s) for s in steps))
    return replace(probe, report=report)
