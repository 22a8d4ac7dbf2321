"""Open a predictor for one benchmark variant, and time a cold start in a fresh process.

`open_predictor(spec)` is the one place that turns a variant spec (a JSON-ready dict) into a
`SamPredictor`; the in-process suite and the cold-start child both use it, so both measure the
same thing. `measure_cold_start` runs ``python -m edgesam.bench.coldstart`` once per run: the
child reads the sample image, then times importing the runtime, loading the model and
producing the first mask (``set_image`` + one click), and reports that time and its peak RSS.

Spec keys: ``backend``, ``precision``, ``threads`` (int or None), ``options`` (backend
constructor keywords), and ``checkpoint`` (torch) or ``bundle`` (others).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edgesam.loading import load_predictor, thread_options

from .timing import TimingStats, peak_rss_mb

__all__ = ["ColdStart", "child_env", "measure_cold_start", "open_predictor", "process_peak_rss_mb", "thread_options"]


def child_env(spec: Mapping[str, Any]) -> dict[str, str]:
    """Environment for a child ``python -m edgesam...`` measuring `spec`: this checkout's
    edgesam first on ``PYTHONPATH`` and the spec's thread count as ``OMP_NUM_THREADS``."""
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])  # the folder holding edgesam/
    env["PYTHONPATH"] = os.pathsep.join(
        [package_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    if spec.get("threads"):
        env["OMP_NUM_THREADS"] = str(spec["threads"])
    return env


def open_predictor(spec: Mapping[str, Any]) -> Any:
    """A `SamPredictor` for a variant spec (see the module docstring)."""
    model = spec["checkpoint"] if spec["backend"] == "torch" else spec["bundle"]
    return load_predictor(model, backend=str(spec["backend"]), threads=spec.get("threads") or None,
                          **dict(spec.get("options") or {}))


class ColdStart:
    """Result of `measure_cold_start`.

    Attributes:
        total: load + first mask per run (ms).
        load: import + model load per run (ms).
        peak_rss_mb: largest peak resident set size over the runs (MiB).
    """

    def __init__(self, total: TimingStats, load: TimingStats, peak_rss_mb: float | None) -> None:
        self.total = total
        self.load = load
        self.peak_rss_mb = peak_rss_mb


def measure_cold_start(spec: Mapping[str, Any], image: np.ndarray, point: np.ndarray, *,
                       runs: int = 1, timeout: float = 600.0) -> ColdStart:
    """Run the child `runs` times for `spec` on `image` with a click at `point` ``[1, 2]``.

    Raises:
        RuntimeError: a child failed or timed out (the message holds its last stderr lines).
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    env = child_env(spec)
    totals, loads, peaks = [], [], []
    with tempfile.TemporaryDirectory(prefix="edgesam-cold-") as tmp:
        np.save(Path(tmp) / "image.npy", np.ascontiguousarray(image))
        job = {**dict(spec), "image": str(Path(tmp) / "image.npy"),
               "point": np.asarray(point, dtype=np.float32).reshape(-1, 2).tolist()}
        (Path(tmp) / "spec.json").write_text(json.dumps(job))
        cmd = [sys.executable, "-m", "edgesam.bench.coldstart", str(Path(tmp) / "spec.json")]
        for _ in range(runs):
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env,
                                      timeout=timeout)
            except subprocess.TimeoutExpired as exc:
                raise RuntimeError(f"cold start of {spec['backend']} timed out after "
                                   f"{timeout:.0f} s") from exc
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode != 0 or not lines:
                tail = "\n".join(proc.stderr.strip().splitlines()[-6:])
                raise RuntimeError(f"cold start of {spec['backend']} {spec.get('precision')} "
                                   f"failed (exit {proc.returncode}): {tail}")
            out = json.loads(lines[-1])
            totals.append(out["total_ms"])
            loads.append(out["load_ms"])
            if out.get("peak_rss_mb") is not None:
                peaks.append(out["peak_rss_mb"])
    return ColdStart(TimingStats.from_samples(totals), TimingStats.from_samples(loads),
                     max(peaks) if peaks else None)


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


def _child(spec_path: str) -> int:
    job = json.loads(Path(spec_path).read_text())
    image = np.load(job["image"])
    point = np.asarray(job["point"], dtype=np.float32)
    start = time.perf_counter()
    predictor = open_predictor(job)
    loaded = time.perf_counter()
    predictor.set_image(image)
    predictor.predict(point_coords=point, point_labels=np.ones(len(point), dtype=np.int64))
    done = time.perf_counter()
    print(json.dumps({"load_ms": (loaded - start) * 1e3, "total_ms": (done - start) * 1e3,
                      "peak_rss_mb": process_peak_rss_mb()}))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
