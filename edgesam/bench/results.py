"""Benchmark result rows and their JSONL history.

One `ResultRow` records one configuration (backend, precision, arch, image size, threads,
quick flag, extras) measured once on one device: named metrics (latency `TimingStats` or
scalars), fidelity figures against a reference, and speed-ups against a baseline.
Rows are appended, one JSON object per line, to ``<results_dir>/<device_id>.jsonl``; that
file is the device's history and is meant to be committed.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Union

from edgesam.hardware import device_fingerprint, device_id as make_device_id
from .timing import TimingStats

__all__ = ["SCHEMA_VERSION", "BenchConfig", "Metric", "ResultRow", "ResultsDirError", "append_rows",
           "check_results_dir", "compute_speedup", "load_rows", "parse_timestamp", "utc_now_iso"]

SCHEMA_VERSION = 1
Metric = Union[TimingStats, float, int]
_SAFE_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class ResultsDirError(OSError):
    """The results folder (or a file in it) cannot be created, written or read."""


def _dir_error(exc: OSError, what: str, path: Path) -> ResultsDirError:
    return ResultsDirError(exc.errno, f"{what} {str(path)!r}: {exc.strerror or exc}", str(path))


def check_results_dir(path: str | os.PathLike[str]) -> Path:
    """Create `path` if needed and prove it is writable, before any measuring starts.

    Raises:
        ResultsDirError: it is a file, cannot be created, or cannot be written.
    """
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise ResultsDirError(f"results path {str(root)!r} exists and is not a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise ResultsDirError(exc.errno, f"results folder {str(root)!r} is not writable: {exc.strerror or exc}. "
                              "Choose a writable folder", str(root)) from exc
    return root


def utc_now_iso() -> str:
    """Current UTC time as ISO 8601 with milliseconds and a ``Z`` suffix."""
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    return now.replace("+00:00", "Z")


def parse_timestamp(text: str) -> datetime:
    """Parse a row timestamp written by `utc_now_iso` (aware UTC datetime)."""
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class BenchConfig:
    """What was run. Two rows compare as "the same configuration" when their `key()`s match.

    Attributes:
        backend: runtime name, e.g. "torch", "onnxruntime", "openvino", "tensorrt".
        precision: e.g. "fp32", "fp16", "bf16", "int8".
        arch: model architecture, e.g. "vit_t", "edge_sam".
        image_size: square encoder input side S in pixels.
        threads: intra-op threads requested (None = runtime default).
        quick: True for smoke-test budgets whose numbers are rough.
        extra: further JSON-serialisable settings that change the numbers (provider, batch...).
    """

    backend: str
    precision: str
    arch: str
    image_size: int
    threads: int | None = None
    quick: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    def key(self) -> tuple[Any, ...]:
        """Hashable identity of the configuration."""
        extra = json.dumps(dict(self.extra), sort_keys=True, default=str)
        return (self.backend, self.precision, self.arch, int(self.image_size), self.threads,
                bool(self.quick), extra)

    def label(self) -> str:
        """Short human label, e.g. ``onnxruntime int8 vit_t 1024px 2t (quick)``."""
        parts = [self.backend, self.precision, self.arch, f"{self.image_size}px"]
        parts += [f"{self.threads}t"] if self.threads is not None else []
        parts += [f"{k}={v}" for k, v in sorted(self.extra.items())]
        return " ".join(parts) + (" (quick)" if self.quick else "")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {**asdict(self), "image_size": int(self.image_size), "quick": bool(self.quick),
                "extra": dict(self.extra)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "BenchConfig":
        """Inverse of `to_dict`."""
        return cls(backend=data["backend"], precision=data["precision"], arch=data["arch"],
                   image_size=int(data["image_size"]), threads=data.get("threads"),
                   quick=bool(data.get("quick", False)), extra=dict(data.get("extra") or {}))


def compute_speedup(metrics: Mapping[str, Metric],
                    baseline: Mapping[str, Metric]) -> dict[str, float]:
    """Median-latency ratio baseline / candidate for every timing metric both share.

    Values above 1 mean the candidate is faster.
    """
    out: dict[str, float] = {}
    for name, value in metrics.items():
        base = baseline.get(name)
        if isinstance(value, TimingStats) and isinstance(base, TimingStats) and value.p50_ms > 0:
            out[name] = base.p50_ms / value.p50_ms
    return out


def _finite(value: Any) -> Any:
    """Recursively replace NaN/inf floats with None so the JSON stays standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


@dataclass
class ResultRow:
    """One configuration measured once on one device.

    Attributes:
        config: what was run.
        metrics: name -> `TimingStats` (latency) or a scalar (e.g. "peak_rss_mb").
        device_id: slug from `device.device_id`; names the JSONL file.
        device: full `device_fingerprint()` (holds ``git_commit`` and package versions).
        timestamp: UTC ISO 8601 (`utc_now_iso`).
        fidelity: name -> scalar agreement with a reference (e.g. "embedding_cosine", "mask_iou").
        speedup: metric name -> baseline p50 / this p50 (see `compute_speedup`).
        baseline: label of the configuration `speedup` is measured against.
        schema: row format version.
        flags: why the figures are inconsistent ([] for a result; see `consistency`).
    """

    config: BenchConfig
    metrics: dict[str, Metric]
    device_id: str
    device: dict[str, Any]
    timestamp: str
    fidelity: dict[str, float] = field(default_factory=dict)
    speedup: dict[str, float] = field(default_factory=dict)
    baseline: str | None = None
    schema: int = SCHEMA_VERSION
    flags: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, config: BenchConfig, metrics: Mapping[str, Metric], *,
               fidelity: Mapping[str, float] | None = None,
               speedup: Mapping[str, float] | None = None, baseline: str | None = None,
               fingerprint: Mapping[str, Any] | None = None) -> "ResultRow":
        """New row stamped now; the fingerprint is taken here unless given."""
        fp = dict(fingerprint) if fingerprint is not None else device_fingerprint()
        return cls(config=config, metrics=dict(metrics), device_id=make_device_id(fp),
                   device=fp, timestamp=utc_now_iso(), fidelity=dict(fidelity or {}),
                   speedup=dict(speedup or {}), baseline=baseline)

    @property
    def commit(self) -> str | None:
        """Git commit recorded in the fingerprint, if any."""
        return self.device.get("git_commit")

    @property
    def when(self) -> datetime:
        """`timestamp` as an aware datetime."""
        return parse_timestamp(self.timestamp)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (timing metrics become `TimingStats.to_dict()` dicts)."""
        metrics: dict[str, Any] = {}
        for name, value in self.metrics.items():
            if isinstance(value, TimingStats):
                metrics[name] = value.to_dict()
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                metrics[name] = value
            else:
                raise TypeError(f"metric {name!r} must be TimingStats or a number, "
                                f"got {type(value).__name__}")
        return _finite({
            "schema": self.schema, "timestamp": self.timestamp, "device_id": self.device_id,
            "config": self.config.to_dict(), "metrics": metrics, "fidelity": self.fidelity,
            "speedup": self.speedup, "baseline": self.baseline, "device": self.device,
            **({"flags": list(self.flags)} if self.flags else {}),
        })

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ResultRow":
        """Inverse of `to_dict`."""
        metrics = {name: TimingStats.from_dict(value) if TimingStats.is_stats_dict(value) else value
                   for name, value in (data.get("metrics") or {}).items()}
        return cls(config=BenchConfig.from_dict(data["config"]), metrics=metrics,
                   device_id=data["device_id"], device=dict(data.get("device") or {}),
                   timestamp=data["timestamp"], fidelity=dict(data.get("fidelity") or {}),
                   speedup=dict(data.get("speedup") or {}), baseline=data.get("baseline"),
                   schema=int(data.get("schema", SCHEMA_VERSION)),
                   flags=[str(f) for f in data.get("flags") or []])


def append_rows(results_dir: str | Path,
                rows: Iterable[ResultRow | Mapping[str, Any]]) -> list[Path]:
    """Append rows to ``<results_dir>/<device_id>.jsonl`` (one file per device).

    Creates `results_dir` if needed. Returns the files written to.

    Raises:
        ResultsDirError: the folder cannot be created or a file cannot be written; the
            message names the path.
        ValueError: a row's device_id is not a safe file name.
    """
    root = Path(results_dir)
    by_device: dict[str, list[str]] = {}
    for row in rows:
        data = row.to_dict() if isinstance(row, ResultRow) else ResultRow.from_dict(row).to_dict()
        dev = data["device_id"]
        if not isinstance(dev, str) or not _SAFE_ID.match(dev):
            raise ValueError(f"device_id {dev!r} is not a safe file name ([a-z0-9._-])")
        by_device.setdefault(dev, []).append(json.dumps(data, allow_nan=False))
    if not by_device:
        return []
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _dir_error(exc, "cannot create results folder", root) from exc
    written: list[Path] = []
    for dev, lines in by_device.items():
        path = root / f"{dev}.jsonl"
        try:
            with path.open("a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
        except OSError as exc:
            raise _dir_error(exc, "cannot write results file", path) from exc
        written.append(path)
    return written


def _looks_like_a_row(line: str) -> bool:
    """Whether the first line of a ``*.jsonl`` is a bench row (has ``device_id``), not another log."""
    try:
        record = json.loads(line)
    except ValueError:
        return True  # a damaged bench file: let the row parser name the line
    return not isinstance(record, dict) or "device_id" in record


def load_rows(results_dir: str | Path, *, device_id: str | None = None) -> list[ResultRow]:
    """Read every ``*.jsonl`` in `results_dir` (or only `device_id`'s), oldest first.

    A missing folder gives ``[]``. Blank lines are skipped, and so are files whose first record
    is not a bench row (no ``device_id``: other benchmarks' logs kept in the same folder).

    Raises:
        ResultsDirError: `results_dir` exists but is not a readable folder.
        ValueError: a line is not a valid row; the message names file and line number.
    """
    root = Path(results_dir)
    if not root.exists():
        return []
    if not root.is_dir():
        raise ResultsDirError(f"results path {str(root)!r} is not a folder")
    paths = [root / f"{device_id}.jsonl"] if device_id else sorted(root.glob("*.jsonl"))
    rows: list[ResultRow] = []
    for path in (p for p in paths if p.exists()):
        first = True
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                if first and not device_id and not _looks_like_a_row(line):
                    break  # another benchmark's log beside the device files (distill.jsonl, serve_load.jsonl)
                first = False
                try:
                    rows.append(ResultRow.from_dict(json.loads(line)))
                except (ValueError, KeyError, TypeError) as exc:
                    raise ValueError(f"{path}:{lineno}: not a valid result row ({exc})") from exc
    rows.sort(key=lambda r: r.when)
    return rows
