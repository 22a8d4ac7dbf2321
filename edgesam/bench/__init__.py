"""Benchmark harness: device fingerprints, timing, JSONL results, reports, the suite.

Numpy-only at import time; matplotlib (report plots) and tqdm (progress) load lazily.

    from edgesam.bench import BenchConfig, ResultRow, append_rows, measure, write_report

    stats = measure(lambda: backend.encode(x), warmup=3, min_runs=10, min_seconds=2.0)
    row = ResultRow.create(BenchConfig(backend="onnxruntime", precision="fp32", arch="vit_t",
                                       image_size=1024, threads=2), {"encoder": stats})
    append_rows("benchmarks/results", [row])
    write_report("benchmarks/results", "benchmarks/report")

The whole suite (every backend x precision of one model) is `edgesam.bench.suite.run_suite`.
"""

from edgesam.hardware import device_fingerprint, device_id
from .report import write_report
from .results import BenchConfig, ResultRow, ResultsDirError, append_rows, compute_speedup, load_rows
from .timing import FULL_PLAN, QUICK_PLAN, TimingPlan, TimingStats, current_rss_mb, measure, peak_rss_mb

__all__ = ["FULL_PLAN", "QUICK_PLAN", "BenchConfig", "ResultRow", "ResultsDirError", "TimingPlan", "TimingStats",
           "append_rows", "compute_speedup", "current_rss_mb", "device_fingerprint", "device_id", "load_rows",
           "measure", "peak_rss_mb", "write_report"]
