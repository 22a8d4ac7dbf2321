"""Latency of one candidate, timed in-process (:mod:`edgesam.bench.timing`), and the load it ran under.

Timed cases (ms, ``TimingStats``): ``encoder`` (backend.encode on the pre-processed input),
``first_mask`` (set_image + predict(1 click): what a user waits for after a new image) and
``decode_point`` (predict(1 click, 3 masks) on the set image).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from edgesam.bench.cases import model_input
from edgesam.bench.timing import TimingPlan, TimingStats
from edgesam.prompt_geometry import click_inside

__all__ = ["FULL_TIMING", "QUICK_TIMING", "load_average", "time_candidate"]

#: Budget of a normal run: warm-up, at least 10 runs or 2 s per case.
FULL_TIMING = TimingPlan(warmup=2, min_runs=10, min_seconds=2.0, max_runs=200)
#: Smoke-test budget.
QUICK_TIMING = TimingPlan(warmup=1, min_runs=3, min_seconds=0.0, max_runs=3)


def load_average() -> float | None:
    """1-minute load average (None off Unix)."""
    try:
        return round(float(os.getloadavg()[0]), 2)
    except (AttributeError, OSError):
        return None


def time_candidate(predictor: Any, image: np.ndarray, plan: TimingPlan = FULL_TIMING) -> dict[str, TimingStats]:
    """Time the three cases of the module docstring on ``predictor`` with ``image`` (uint8 RGB)."""
    backend = predictor.backend
    x = model_input(backend, image)
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    centre = ((yy - h / 2) ** 2 / (h / 4) ** 2 + (xx - w / 2) ** 2 / (w / 4) ** 2) <= 1.0
    point = np.array([click_inside(centre)], dtype=np.float32)
    label = np.ones(1, dtype=np.float32)
    out = {"encoder": plan.measure(lambda: backend.encode(x))}

    def first_mask() -> None:
        predictor.set_image(image)
        predictor.predict(point_coords=point, point_labels=label)

    first = TimingPlan(warmup=1, min_runs=max(1, plan.min_runs // 2), min_seconds=plan.min_seconds,
                       max_runs=max(1, plan.max_runs // 4))  # fmt: skip
    out["first_mask"] = first.measure(first_mask)
    out["decode_point"] = plan.measure(
        lambda: predictor.predict(point_coords=point, point_labels=label, multimask_output=True))
    return out
