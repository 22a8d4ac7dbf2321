"""In-process latency measurement and memory probes.

`measure(fn)` calls `fn()` a few times to warm up, then times each call with
`time.perf_counter` until both `min_runs` calls and `min_seconds` of timed work are done
(or `max_runs` is hit), and summarises the per-call latencies as `TimingStats`.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable, Mapping

import numpy as np

__all__ = ["FULL_PLAN", "QUICK_PLAN", "TimingPlan", "TimingStats", "current_rss_mb", "measure", "peak_rss_mb",
           "pin_torch_threads", "process_peak_rss_mb", "restore_torch_threads"]

_SUMMARY = ("n", "mean_ms", "std_ms", "p50_ms", "p90_ms", "p99_ms", "min_ms", "max_ms")


@dataclass(frozen=True)
class TimingStats:
    """Summary of per-call latencies in milliseconds.

    Percentiles use numpy's default (linear interpolation). `samples_ms` keeps the raw
    per-call times; it is left out of `to_dict()` unless asked for and takes no part in equality.
    """

    n: int
    mean_ms: float
    std_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    samples_ms: tuple[float, ...] = field(default=(), repr=False, compare=False)

    @classmethod
    def from_samples(cls, samples_ms: Any) -> "TimingStats":
        """Summarise a non-empty 1-D sequence of latencies (ms)."""
        arr = np.asarray(samples_ms, dtype=np.float64).reshape(-1)
        if arr.size == 0:
            raise ValueError("TimingStats.from_samples needs at least one sample")
        if not np.all(np.isfinite(arr)):
            raise ValueError("TimingStats.from_samples got non-finite latencies")
        p50, p90, p99 = np.percentile(arr, [50.0, 90.0, 99.0])
        return cls(n=int(arr.size), mean_ms=float(arr.mean()), std_ms=float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
                   p50_ms=float(p50), p90_ms=float(p90), p99_ms=float(p99), min_ms=float(arr.min()),
                   max_ms=float(arr.max()), samples_ms=tuple(float(x) for x in arr))

    def to_dict(self, *, include_samples: bool = False) -> dict[str, Any]:
        """JSON-ready dict of the summary fields (plus ``samples_ms`` if asked)."""
        out = asdict(self)
        samples = out.pop("samples_ms")
        return {**out, "samples_ms": list(samples)} if include_samples else out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TimingStats":
        """Inverse of `to_dict`; unknown keys are ignored, missing summary keys raise KeyError."""
        values = {name: float(data[name]) for name in _SUMMARY}
        return cls(**{**values, "n": int(data["n"])},
                   samples_ms=tuple(float(x) for x in data.get("samples_ms", ())))

    @staticmethod
    def is_stats_dict(data: Any) -> bool:
        """True when `data` is a mapping holding every summary field of `TimingStats`."""
        return isinstance(data, Mapping) and all(name in data for name in _SUMMARY)


def measure(fn: Callable[[], object], *, warmup: int = 3, min_runs: int = 10, min_seconds: float = 1.0,
            max_runs: int = 1000) -> TimingStats:
    """Time `fn()` in this process and summarise the latencies.

    Args:
        fn: zero-argument callable; its return value is discarded (block on asynchronous
            work inside `fn`, e.g. copy GPU results to host, so the time is complete).
        warmup: untimed calls made first (lazy initialisation, caches, JIT).
        min_runs: at least this many timed calls.
        min_seconds: keep calling until the timed calls add up to at least this long.
        max_runs: hard cap on timed calls; wins over `min_seconds`.

    Returns:
        `TimingStats` over the timed calls, with `samples_ms` holding each call's latency.
    """
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0, got {warmup}")
    if min_runs < 1:
        raise ValueError(f"min_runs must be >= 1, got {min_runs}")
    if max_runs < min_runs:
        raise ValueError(f"max_runs ({max_runs}) must be >= min_runs ({min_runs})")
    if min_seconds < 0:
        raise ValueError(f"min_seconds must be >= 0, got {min_seconds}")
    for _ in range(warmup):
        fn()
    gc.collect()
    samples: list[float] = []
    total = 0.0
    while len(samples) < max_runs and (len(samples) < min_runs or total < min_seconds):
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        total += elapsed
        samples.append(elapsed * 1e3)
    return TimingStats.from_samples(samples)


@dataclass(frozen=True)
class TimingPlan:
    """A named set of `measure` arguments, so a whole run uses one budget."""

    warmup: int = 3
    min_runs: int = 10
    min_seconds: float = 1.0
    max_runs: int = 1000

    def measure(self, fn: Callable[[], object]) -> TimingStats:
        """`measure(fn, **plan)`."""
        return measure(fn, warmup=self.warmup, min_runs=self.min_runs, min_seconds=self.min_seconds,
                       max_runs=self.max_runs)


#: Smoke-test budget: proves the path works, numbers are rough.
QUICK_PLAN = TimingPlan(warmup=1, min_runs=3, min_seconds=0.0, max_runs=5)
#: Budget for numbers that go into the results history.
FULL_PLAN = TimingPlan(warmup=3, min_runs=10, min_seconds=2.0, max_runs=500)


def peak_rss_mb() -> float | None:
    """Peak resident set size of this process in MiB (None where `resource` is missing)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024.0  # macOS bytes, Linux KiB


def current_rss_mb() -> float | None:
    """Current resident set size in MiB from /proc/self/statm (None off Linux)."""
    try:
        with open("/proc/self/statm") as fh:
            resident_pages = int(fh.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def process_peak_rss_mb() -> float | None:
    """Peak resident set size of this process image in MiB.

    Reads ``VmHWM`` from /proc/self/status: it starts afresh at exec, whereas ``ru_maxrss``
    keeps the high-water mark of the process that forked us (the whole benchmark). Falls
    back to ``ru_maxrss`` where /proc is missing.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return peak_rss_mb()


def pin_torch_threads(threads: int | None) -> int | None:
    """Set torch's intra-op threads (only if torch is importable); returns the old value (None: untouched)."""
    if threads is None:
        return None
    try:
        import torch
    except ImportError:
        return None
    old = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    return old


def restore_torch_threads(old: int | None) -> None:
    """Undo :func:`pin_torch_threads` (``old`` is what it returned)."""
    if old is not None:
        import torch

        torch.set_num_threads(old)
