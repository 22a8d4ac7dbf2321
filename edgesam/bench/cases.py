"""The timed cases of one backend x precision, on an open predictor.

Metric names (all latencies in ms, summarised as `TimingStats`):

    encoder        backend.encode on the pre-processed [1, 3, S, S] input (model time only)
    first_mask     set_image + predict(1 click): what a user waits for after a new frame
    decode_point   predict(1 click, 3 masks), incl. prompt packing and upscaling to the image
    decode_box     predict(1 box, 1 mask)
    decode_box16   predict_batch(16 boxes, 1 mask each): one decoder call
    everything_<n>pps   SamAutomaticMaskGenerator(points_per_side=n).generate(image)

`BudgetPlans` holds the timing budget of each kind of case (quick or full).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .timing import FULL_PLAN, QUICK_PLAN, TimingPlan, TimingStats
from .workload import Workload

__all__ = ["BudgetPlans", "FULL_BUDGET", "QUICK_BUDGET", "SMOKE_BUDGET", "model_input", "time_cases"]


@dataclass(frozen=True)
class BudgetPlans:
    """Timing budgets of one run.

    Attributes:
        timing: encoder and decoder cases.
        first_mask: set_image + predict; keep a warm-up call: runtimes with dynamic shapes
            (OpenVINO) pay a one-off cost on the first decoder call of a new shape.
        everything: segment-everything (expensive: few runs).
        everything_points: grid points per side for segment-everything (0 = not measured).
        cold_start_runs: fresh-process runs for the cold start (0 = not measured).
        fidelity_images: scenes the fidelity figures are computed on.
    """

    timing: TimingPlan
    first_mask: TimingPlan
    everything: TimingPlan
    everything_points: int
    cold_start_runs: int
    fidelity_images: int


_ONCE = TimingPlan(warmup=0, min_runs=1, min_seconds=0.0, max_runs=1)
#: Smoke-test budget (``--quick``): every path runs, numbers are rough.
QUICK_BUDGET = BudgetPlans(QUICK_PLAN, TimingPlan(warmup=1, min_runs=2, min_seconds=0.0, max_runs=2), _ONCE,
                           everything_points=8, cold_start_runs=1, fidelity_images=1)
#: Smallest budget that still runs every case (``edgesam demo --quick``, tests).
SMOKE_BUDGET = BudgetPlans(TimingPlan(warmup=1, min_runs=2, min_seconds=0.0, max_runs=2),
                           TimingPlan(warmup=1, min_runs=1, min_seconds=0.0, max_runs=1), _ONCE,
                           everything_points=4, cold_start_runs=1, fidelity_images=1)
#: Budget for numbers that go into the history.
FULL_BUDGET = BudgetPlans(FULL_PLAN, TimingPlan(warmup=1, min_runs=5, min_seconds=2.0, max_runs=50),
                          TimingPlan(warmup=1, min_runs=3, min_seconds=0.0, max_runs=3),
                          everything_points=16, cold_start_runs=3, fidelity_images=3)


def model_input(backend: Any, image: np.ndarray) -> np.ndarray:
    """The float32 ``[1, 3, S, S]`` encoder input a predictor on `backend` makes from RGB `image`."""
    from edgesam.predictor.transforms import normalize_and_pad, resize_longest_side

    size = int(backend.image_size)
    mean = np.asarray(backend.pixel_mean, dtype=np.float32).reshape(3)
    std = np.asarray(backend.pixel_std, dtype=np.float32).reshape(3)
    return normalize_and_pad(resize_longest_side(image, size), mean, std, size)


def time_cases(predictor: Any, work: Workload, budget: BudgetPlans,
               step: Callable[[str], None] = lambda _: None) -> dict[str, TimingStats]:
    """Run every timed case on `predictor`; `step(name)` is called before each one.

    Returns ``name -> TimingStats`` (see the module docstring for the names).
    """
    out: dict[str, TimingStats] = {}
    backend = predictor.backend
    x = model_input(backend, work.image)
    pt, lbl = work.point, work.point_label

    step("encoder")
    out["encoder"] = budget.timing.measure(lambda: backend.encode(x))

    def first_mask() -> None:
        predictor.set_image(work.image)
        predictor.predict(point_coords=pt, point_labels=lbl)

    step("first_mask")
    out["first_mask"] = budget.first_mask.measure(first_mask)
    step("decoders")
    out["decode_point"] = budget.timing.measure(lambda: predictor.predict(point_coords=pt, point_labels=lbl,
                                                                          multimask_output=True))
    out["decode_box"] = budget.timing.measure(lambda: predictor.predict(box=work.box, multimask_output=False))
    out["decode_box16"] = budget.timing.measure(lambda: predictor.predict_batch(boxes=work.boxes,
                                                                                multimask_output=False))
    if budget.everything_points > 0:
        from edgesam.everything import SamAutomaticMaskGenerator

        step("everything")
        gen = SamAutomaticMaskGenerator(predictor, points_per_side=budget.everything_points)
        out[f"everything_{budget.everything_points}pps"] = budget.everything.measure(
            lambda: gen.generate(work.image))
    return out
