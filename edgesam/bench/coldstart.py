"""Open a predictor for one benchmark variant, and time a cold start in a fresh process.

`open_predictor(spec)` is the one place that turns a variant spec (a JSON-ready dict) into a
`SamPredictor`; the in-process suite and the fresh-process children (`run_child`: this cold start,
`edgesam.bench.memory`'s RSS) use it, so all measure the same thing. `measure_cold_start` runs
``python -m edgesam.bench.coldstart`` once per run: the child reads the sample image, then times
importing the runtime, loading the model and producing the first mask (``set_image`` + one click),
and reports that time and its peak RSS.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from edgesam.loading import load_predictor

from .timing import TimingStats, process_peak_rss_mb

__all__ = ["ColdStart", "child_env", "measure_cold_start", "open_predictor", "run_child"]


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


@dataclass(frozen=True)
class ColdStart:
    """Result of `measure_cold_start`: load + first mask (`total`) and import + model load (`load`)
    per run in ms, and the largest peak resident set size over the runs (MiB)."""

    total: TimingStats
    load: TimingStats
    peak_rss_mb: float | None


def run_child(module: str, job: Mapping[str, Any], *, what: str, timeout: float = 600.0) -> dict[str, Any]:
    """Run ``python -m <module> <job.json>`` in a fresh process (`child_env` of `job`) and return
    the last JSON object it printed.

    Raises:
        RuntimeError: the child failed or timed out; the message names `what` and holds its last stderr lines.
    """
    with tempfile.TemporaryDirectory(prefix="edgesam-child-") as tmp:
        path = Path(tmp) / "job.json"
        path.write_text(json.dumps(dict(job)))
        try:
            proc = subprocess.run([sys.executable, "-m", module, str(path)], capture_output=True, text=True,
                                  env=child_env(job), timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{what} timed out after {timeout:.0f} s") from exc
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-6:])
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {tail}")
    return json.loads(lines[-1])


def measure_cold_start(spec: Mapping[str, Any], image: np.ndarray, point: np.ndarray, *,
                       runs: int = 1, timeout: float = 600.0) -> ColdStart:
    """Run the child `runs` times for `spec` on `image` with a click at `point` ``[1, 2]``.

    Raises:
        RuntimeError: a child failed or timed out (the message holds its last stderr lines).
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    with tempfile.TemporaryDirectory(prefix="edgesam-cold-") as tmp:
        np.save(Path(tmp) / "image.npy", np.ascontiguousarray(image))
        job = {**dict(spec), "image": str(Path(tmp) / "image.npy"),
               "point": np.asarray(point, dtype=np.float32).reshape(-1, 2).tolist()}
        what = f"cold start of {spec['backend']} {spec.get('precision')}"
        outs = [run_child("edgesam.bench.coldstart", job, what=what, timeout=timeout) for _ in range(runs)]
    peaks = [o["peak_rss_mb"] for o in outs if o.get("peak_rss_mb") is not None]
    return ColdStart(TimingStats.from_samples([o["total_ms"] for o in outs]),
                     TimingStats.from_samples([o["load_ms"] for o in outs]), max(peaks) if peaks else None)


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
