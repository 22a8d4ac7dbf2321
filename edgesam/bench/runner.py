"""Run several named timing cases under one budget with a progress bar."""

from __future__ import annotations

from typing import Callable, Mapping

from .progress import progress
from .timing import FULL_PLAN, TimingPlan, TimingStats

__all__ = ["run_case", "run_cases"]


def run_case(name: str, fn: Callable[[], object], *,
             plan: TimingPlan = FULL_PLAN) -> tuple[str, TimingStats]:
    """Time one case; returns ``(name, stats)`` ready to put into a metrics dict."""
    return name, plan.measure(fn)


def run_cases(cases: Mapping[str, Callable[[], object]], *, plan: TimingPlan = FULL_PLAN,
              desc: str = "bench", show_progress: bool = True) -> dict[str, TimingStats]:
    """Time each ``name -> fn`` case in order; returns ``name -> TimingStats``.

    The progress bar (stderr) shows the case being timed; cases run one after another so
    they do not compete for cores.
    """
    results: dict[str, TimingStats] = {}
    with progress(total=len(cases), desc=desc, disable=not show_progress) as bar:
        for name, fn in cases.items():
            bar.set_postfix_str(name)
            results[name] = run_case(name, fn, plan=plan)[1]
            bar.update(1)
    return results
