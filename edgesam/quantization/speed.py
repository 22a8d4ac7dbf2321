"""Is the INT8 bundle faster than its fp32 original on the same backend? Measured, side by side.

Both encoders run round-robin on the same input (so background load hits them alike), after
warm-up, for at least a number of rounds and at least :data:`MIN_SECONDS` of timed calls (a
model that encodes in a few milliseconds gets hundreds of rounds, not five: the verdict on a
tiny model flipped between runs with five); the verdict compares the median of the per-round
ratios with a margin, because a quantized bundle that is not measurably faster is not worth its
accuracy cost.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["FASTER_MARGIN", "MIN_SECONDS", "SpeedReport", "compare_speed", "time_encoders"]

FASTER_MARGIN = 0.05  # "measurably faster": the INT8 median at least 5% below the fp32 median
MIN_SECONDS = 1.0  # timed encoder time per model, at least (small models: more rounds)
MAX_ROUNDS = 400


@dataclass(frozen=True)
class SpeedReport:
    """Encoder latency of the quantized bundle against the fp32 bundle, same backend, same run.

    Attributes:
        reference: what the fp32 bundle ran on (e.g. ``"openvino CPU f32"``).
        reference_ms, candidate_ms: median encoder latency.
        speedup: ``reference_ms / candidate_ms``.
        faster: ``candidate_ms <= (1 - margin) * reference_ms``.
        margin: the margin used.
        rounds: timed calls per model.
        load: the 1-minute load average when measured (None where the OS has none).
        cpus: usable CPUs.
    """

    reference: str
    reference_ms: float
    candidate_ms: float
    speedup: float
    faster: bool
    margin: float
    rounds: int
    load: float | None
    cpus: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (``quantization.speed`` in the bundle metadata)."""
        return asdict(self)

    def summary(self) -> str:
        """One line: the two latencies and the verdict."""
        verdict = "faster" if self.faster else "NOT measurably faster"
        load = f", load {self.load:.1f} on {self.cpus} CPU(s)" if self.load is not None else ""
        if self.load is not None and self.load > self.cpus:
            load += " (busier than its CPUs: the verdict may not repeat; measure on a quiet machine)"
        return (f"encoder {self.candidate_ms:.1f} ms vs fp32 {self.reference_ms:.1f} ms ({self.reference}): "
                f"{self.speedup:.2f}x, {verdict}{load}")  # fmt: skip


def _load() -> float | None:
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def time_encoders(encoders: dict[str, Any], image_size: int, *, rounds: int = 5, warmup: int = 1,
                  min_seconds: float = 0.0, max_rounds: int = MAX_ROUNDS) -> dict[str, list[float]]:
    """Milliseconds per ``encode`` call of each backend, timed round-robin on one random input.

    Args:
        encoders: name -> backend with ``encode(float32 [1, 3, S, S])``.
        image_size: ``S``.
        rounds: at least this many rounds (one call of each backend per round).
        min_seconds: and at least until every backend has run this long in total (at most
            ``max_rounds`` rounds).
    """
    x = np.random.default_rng(0).standard_normal((1, 3, image_size, image_size)).astype(np.float32)
    for backend in encoders.values():
        for _ in range(warmup):
            backend.encode(x)
    times: dict[str, list[float]] = {name: [] for name in encoders}
    done = 0
    while done < max(1, rounds) or (done < max_rounds and min(sum(t) for t in times.values()) < min_seconds * 1e3):
        done += 1
        for name, backend in encoders.items():
            start = time.perf_counter()
            backend.encode(x)
            times[name].append((time.perf_counter() - start) * 1e3)
    return times


def compare_speed(reference: Any, candidate: Any, *, label: str, rounds: int = 5, margin: float = FASTER_MARGIN,
                  min_seconds: float = MIN_SECONDS) -> SpeedReport:
    """Time ``candidate`` against ``reference`` (both backends of the same image size).

    ``speedup`` is the median of the per-round ratios (robust to load that drifts during the run);
    ``rounds`` at least, more until each model ran ``min_seconds`` in total (fast models).
    """
    times = time_encoders({"ref": reference, "cand": candidate}, int(reference.image_size), rounds=rounds,
                          min_seconds=min_seconds)
    ref, cand = np.array(times["ref"]), np.array(times["cand"])
    ratio = float(np.median(cand / np.maximum(ref, 1e-9)))
    return SpeedReport(reference=label, reference_ms=float(np.median(ref)), candidate_ms=float(np.median(cand)),
                       speedup=1.0 / max(ratio, 1e-9), faster=bool(ratio <= 1.0 - margin), margin=margin, rounds=len(ref),
                       load=_load(), cpus=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)  # fmt: skip
