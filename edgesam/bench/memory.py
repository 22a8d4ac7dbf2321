"""Resident memory (RSS) of one backend x precision, measured in a fresh process.

    from edgesam.bench.memory import measure_rss

    rss = measure_rss("bundles/vit_t-int8", backend="openvino", calls=10)
    print(rss.baseline_mb, rss.steady_mb, rss.peak_mb)

`measure_rss` starts ``python -m edgesam.bench.memory`` once. The child imports numpy, OpenCV,
the predictor and the runtime (for a bundle backend torch is blocked: ``import torch`` fails
there, so the figures are those of a runtime-only install), records the RSS (``baseline``),
opens the predictor (``loaded``), then runs ``calls`` rounds of ``set_image`` on a new
``H x W`` image + ``predict`` with one click, sampling the RSS after each round. The steady
state is the largest sample over the last half of the rounds (an allocator that keeps growing
shows up there), the peak is the kernel's high-water mark (``VmHWM``) of the child.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

from edgesam.bench.coldstart import run_child
from edgesam.bench.timing import current_rss_mb, peak_rss_mb, process_peak_rss_mb

__all__ = ["RssFigures", "measure_rss", "measure_rss_spec", "process_rss_mb", "rss_metrics"]

_RUNTIME_MODULES = {"onnxruntime": "onnxruntime", "openvino": "openvino", "tensorrt": "tensorrt",
                    "torch": "torch"}


@dataclass(frozen=True)
class RssFigures:
    """What `measure_rss` measured (MiB; latencies in ms).

    Attributes:
        peak_mb: high-water mark of the child's RSS (imports, load and every call).
        steady_mb: largest RSS after a ``set_image`` + ``predict`` round over the last half
            of the rounds: the footprint a long-running process keeps.
        baseline_mb: RSS after importing numpy, OpenCV, the predictor and the runtime,
            before loading the model.
        loaded_mb: RSS after opening the predictor (model loaded, nothing run yet).
        per_call_mb: RSS after each round, in order.
        set_image_ms: median ``set_image`` time over the rounds after the first.
        predict_ms: median ``predict`` (one click) time over the rounds after the first.
        torch_imported: whether torch was loaded in the child (never for bundle backends).
    """

    peak_mb: float
    steady_mb: float
    baseline_mb: float
    loaded_mb: float
    per_call_mb: tuple[float, ...]
    set_image_ms: float
    predict_ms: float
    torch_imported: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field."""
        out = asdict(self)
        out["per_call_mb"] = list(self.per_call_mb)
        return out


def process_rss_mb() -> float:
    """Current resident set size of this process in MiB (the peak where the current one is unknown)."""
    rss = current_rss_mb()
    return float(rss if rss is not None else (peak_rss_mb() or 0.0))


def _check_image_size(image_size: Any) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise TypeError(f"image_size must be (height, width), got {image_size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"image_size must be positive (height, width), got {image_size!r}")
    return h, w


def measure_rss(bundle_dir: str | os.PathLike[str], *, backend: str,
                options: Mapping[str, Any] | None = None,
                image_size: tuple[int, int] = (768, 1024), calls: int = 10,
                threads: int | None = None, timeout: float = 600.0, boxes: int = 0) -> RssFigures:
    """RSS of running the bundle at `bundle_dir` on `backend`, in a fresh runtime-only process.

    Args:
        bundle_dir: an exported (or quantized) bundle folder.
        backend: ``"onnxruntime"``, ``"openvino"`` or ``"tensorrt"``.
        options: backend constructor keywords (e.g. ``{"memory": "low"}``); JSON-serialisable.
        image_size: ``(height, width)`` of the images passed to ``set_image``.
        calls: ``set_image`` + ``predict`` rounds (>= 1); each round uses a new random image.
        threads: intra-op threads (None: the runtime's default).
        timeout: seconds before the child is killed.
        boxes: also decode a batch of this many boxes in every round (``predict_batch``; 0: none),
            as segment-everything and multi-object tracking do.

    Raises:
        ValueError: bad `calls`/`image_size`/`boxes`, ``backend="torch"``, missing bundle folder.
        RuntimeError: the child failed or timed out (the message holds its last stderr lines).
    """
    if backend == "torch":
        raise ValueError("measure_rss runs bundles; measure a torch checkpoint with measure_rss_spec")
    if not Path(bundle_dir).is_dir():
        raise ValueError(f"bundle folder {str(bundle_dir)!r} does not exist")
    spec = {"backend": str(backend), "bundle": str(Path(bundle_dir).resolve()), "threads": threads,
            "options": dict(options or {})}
    return measure_rss_spec(spec, image_size=image_size, calls=calls, timeout=timeout, boxes=boxes)


def measure_rss_spec(spec: Mapping[str, Any], *, image_size: tuple[int, int] = (768, 1024),
                     calls: int = 10, timeout: float = 600.0, boxes: int = 0) -> RssFigures:
    """`measure_rss` for a variant spec of :func:`edgesam.bench.coldstart.open_predictor`
    (``backend``, ``threads``, ``options`` and ``bundle`` or ``checkpoint``)."""
    if isinstance(calls, bool) or not isinstance(calls, int) or calls < 1:
        raise ValueError(f"calls must be an int >= 1, got {calls!r}")
    if isinstance(boxes, bool) or not isinstance(boxes, int) or boxes < 0:
        raise ValueError(f"boxes must be an int >= 0, got {boxes!r}")
    h, w = _check_image_size(image_size)
    out = run_child("edgesam.bench.memory", {**dict(spec), "image_hw": [h, w], "calls": calls, "boxes": boxes},
                    what=f"RSS measurement of {spec['backend']}", timeout=timeout)
    out["per_call_mb"] = tuple(out["per_call_mb"])
    return RssFigures(**out)


def rss_metrics(spec: Mapping[str, Any], image_hw: tuple[int, int], *, calls: int = 10) -> dict[str, float]:
    """Bench-row metrics of :func:`measure_rss_spec`: ``steady_rss_mb``, ``peak_rss_mb`` (over
    load + `calls` rounds of set_image + predict) and ``baseline_rss_mb`` (imports only)."""
    rss = measure_rss_spec(spec, image_size=image_hw, calls=calls)
    return {"steady_rss_mb": rss.steady_mb, "peak_rss_mb": rss.peak_mb, "baseline_rss_mb": rss.baseline_mb}


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else float("nan")


def _child(spec_path: str) -> int:
    job = json.loads(Path(spec_path).read_text())
    backend = str(job["backend"])
    if backend != "torch":
        sys.modules["torch"] = None  # type: ignore[assignment]  # runtime-only: `import torch` fails
    import importlib

    import cv2  # noqa: F401 - part of the predictor's footprint
    import numpy as np

    from edgesam.bench.coldstart import open_predictor

    module = _RUNTIME_MODULES.get(backend)
    if module is not None:
        importlib.import_module(module)
    baseline = process_rss_mb()
    predictor = open_predictor(job)
    loaded = process_rss_mb()
    h, w = job["image_hw"]
    rng = np.random.default_rng(0)
    samples: list[float] = []
    set_ms: list[float] = []
    pred_ms: list[float] = []
    for i in range(int(job["calls"])):
        image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        point = np.array([[rng.uniform(0, w - 1), rng.uniform(0, h - 1)]], dtype=np.float32)
        t0 = time.perf_counter()
        predictor.set_image(image)
        t1 = time.perf_counter()
        predictor.predict(point_coords=point, point_labels=np.ones(1, dtype=np.int64),
                          multimask_output=bool(i % 2 == 0))
        t2 = time.perf_counter()
        if job.get("boxes"):
            x0, y0 = rng.uniform(0, w * 0.6, job["boxes"]), rng.uniform(0, h * 0.6, job["boxes"])
            predictor.predict_batch(boxes=np.stack([x0, y0, x0 + w * 0.3, y0 + h * 0.3], axis=1),
                                    multimask_output=False)
        del image
        samples.append(process_rss_mb())
        if i > 0 or job["calls"] == 1:
            set_ms.append((t1 - t0) * 1e3)
            pred_ms.append((t2 - t1) * 1e3)
    tail = samples[len(samples) // 2:]
    print(json.dumps({"peak_mb": process_peak_rss_mb(), "steady_mb": max(tail), "baseline_mb": baseline,
                      "loaded_mb": loaded, "per_call_mb": samples, "set_image_ms": _median(set_ms),
                      "predict_ms": _median(pred_ms),
                      "torch_imported": sys.modules.get("torch") is not None}))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
