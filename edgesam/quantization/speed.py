"""Is the INT8 bundle faster than its fp32 original on the same backend? Measured, side by side.

Both encoders run round-robin on the same input (so background load hits them alike), after
warm-up; the verdict compares medians with a margin, because a quantized bundle that is
not measurably faster is not worth its accuracy cost.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["FASTER_MARGIN", "SpeedReport", "compare_speed", "time_encoders"]

FASTER_MARGIN = 0.05  # "measurably faster": the INT8 median at least 5% below the fp32 median


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
        return (f"encoder {self.candidate_ms:.1f} ms vs fp32 {self.reference_ms:.1f} ms ({self.reference}): "
                f"{self.speedup:.2f}x, {verdict}{load}")  # fmt: skip


def _load() -> float | None:
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def time_encoders(encoders: dict[str, Any], image_size: int, *, rounds: int = 5, warmup: int = 1) -> dict[str, list[float]]:
    """Milliseconds per ``encode`` call of each backend, timed round-robin on one random input.

    Args:
        encoders: name -> backend with ``encode(float32 [1, 3, S, S])``.
        image_size: ``S``.
    """
    x = np.random.default_rng(0).standard_normal((1, 3, image_size, image_size)).astype(np.float32)
    for backend in encoders.values():
        for _ in range(warmup):
            backend.encode(x)
    times: dict[str, list[float]] = {name: [] for name in encoders}
    for _ in range(max(1, rounds)):
        for name, backend in encoders.items():
            start = time.perf_counter()
            backend.encode(x)
            times[name].append((time.perf_counter() - start) * 1e3)
    return times


def compare_speed(reference: Any, candidate: Any, *, label: str, rounds: int = 5, margin: float = FASTER_MARGIN) -> SpeedReport:
    """Time ``candidate`` against ``reference`` (both backends of the same image size)."""
    times = time_encoders({"ref": reference, "cand": candidate}, int(reference.image_size), rounds=rounds)
    ref_ms, cand_ms = float(np.median(times["ref"])), float(np.median(times["cand"]))
    return SpeedReport(reference=label, reference_ms=ref_ms, candidate_ms=cand_ms, speedup=ref_ms / max(cand_ms, 1e-9),
                       faster=bool(cand_ms <= (1.0 - margin) * ref_ms), margin=margin, rounds=max(1, rounds),
                       load=_load(), cpus=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)  # fmt: skip
