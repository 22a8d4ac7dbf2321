"""Per-frame latency and throughput of a stream (thread-safe, bounded memory).

Counters cover the whole run; latency percentiles are computed over the most recent
``window`` samples so that a robot streaming for hours keeps constant memory.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["LatencySummary", "StreamStats", "StreamSummary"]


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles of one latency (milliseconds); NaN when there are no samples.

    Attributes:
        n: samples summarised (at most the stats window).
        p50_ms, p90_ms, mean_ms, max_ms: over those samples.
    """

    n: int
    p50_ms: float
    p90_ms: float
    mean_ms: float
    max_ms: float

    @classmethod
    def of(cls, samples_ms: Any) -> LatencySummary:
        arr = np.asarray(list(samples_ms), dtype=np.float64)
        if arr.size == 0:
            nan = float("nan")
            return cls(0, nan, nan, nan, nan)
        p50, p90 = np.percentile(arr, [50.0, 90.0])
        return cls(int(arr.size), float(p50), float(p90), float(arr.mean()), float(arr.max()))

    def __str__(self) -> str:
        return f"p50 {self.p50_ms:.1f} ms, p90 {self.p90_ms:.1f} ms"


@dataclass(frozen=True)
class StreamSummary:
    """A snapshot of :class:`StreamStats`.

    Attributes:
        frames_submitted: frames handed to the stream.
        frames_dropped: frames replaced by a newer one before the encoder took them.
        frames_encoded: frames whose embedding was computed.
        frames_skipped: embeddings replaced by a newer one before the consumer took them.
        frames_delivered: embeddings handed to the consumer.
        frames_decoded: delivered frames on which at least one prompt was decoded.
        fps: decoded frames per second, from the first submitted frame to the last result.
        input_fps: submitted frames per second.
        encode: time of one image encoding (pre-processing included).
        decode: time of one ``predict`` call on an encoded frame.
        latency: from a frame's submission to its first decoded mask (what a robot waits).
        wall_s: seconds from the first submitted frame to the last event.
    """

    frames_submitted: int
    frames_dropped: int
    frames_encoded: int
    frames_skipped: int
    frames_delivered: int
    frames_decoded: int
    fps: float
    input_fps: float
    encode: LatencySummary
    decode: LatencySummary
    latency: LatencySummary
    wall_s: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict."""
        return asdict(self)

    def __str__(self) -> str:
        return (
            f"{self.frames_decoded} frames decoded of {self.frames_submitted} submitted "
            f"({self.frames_dropped} dropped before encoding, {self.frames_skipped} encoded but superseded) "
            f"in {self.wall_s:.2f} s: {self.fps:.2f} FPS (input {self.input_fps:.2f} FPS); "
            f"latency {self.latency}; encode {self.encode}; decode {self.decode}"
        )


class StreamStats:
    """Collects counters and latencies from the stream's threads.

    Args:
        window: latency samples kept per metric (the newest ones).
        clock: time source in seconds (``time.perf_counter``).
    """

    def __init__(self, *, window: int = 1000, clock: Callable[[], float] = time.perf_counter) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self._clock = clock
        self._lock = threading.Lock()
        self._encode: deque[float] = deque(maxlen=window)
        self._decode: deque[float] = deque(maxlen=window)
        self._latency: deque[float] = deque(maxlen=window)
        self._counts = dict.fromkeys(("submitted", "dropped", "encoded", "skipped", "delivered", "decoded"), 0)
        self._first_submit: float | None = None
        self._last_submit: float | None = None
        self._last_result: float | None = None

    def count(self, what: str, n: int = 1) -> None:
        """Add ``n`` to counter ``what`` ("submitted", "dropped", "encoded", ...)."""
        with self._lock:
            self._counts[what] += n
            if what == "submitted":
                now = self._clock()
                self._first_submit = now if self._first_submit is None else self._first_submit
                self._last_submit = now

    def record_encode(self, ms: float) -> None:
        with self._lock:
            self._counts["encoded"] += 1
            self._encode.append(float(ms))

    def record_decode(self, ms: float, *, latency_ms: float | None = None) -> None:
        """One ``predict`` took ``ms``; ``latency_ms`` is given for a frame's first result."""
        with self._lock:
            self._decode.append(float(ms))
            if latency_ms is not None:
                self._counts["decoded"] += 1
                self._latency.append(float(latency_ms))
                self._last_result = self._clock()

    def summary(self) -> StreamSummary:
        """Counters and latency percentiles so far."""
        with self._lock:
            c = dict(self._counts)
            first, last_in, last_out = self._first_submit, self._last_submit, self._last_result
            encode, decode, latency = list(self._encode), list(self._decode), list(self._latency)
        end = max((t for t in (last_in, last_out) if t is not None), default=None)
        wall = 0.0 if first is None or end is None else end - first
        fps = c["decoded"] / (last_out - first) if first is not None and last_out is not None and last_out > first else 0.0
        in_span = (last_in - first) if first is not None and last_in is not None else 0.0
        input_fps = (c["submitted"] - 1) / in_span if in_span > 0 else 0.0
        return StreamSummary(
            frames_submitted=c["submitted"],
            frames_dropped=c["dropped"],
            frames_encoded=c["encoded"],
            frames_skipped=c["skipped"],
            frames_delivered=c["delivered"],
            frames_decoded=c["decoded"],
            fps=float(fps),
            input_fps=float(input_fps),
            encode=LatencySummary.of(encode),
            decode=LatencySummary.of(decode),
            latency=LatencySummary.of(latency),
            wall_s=float(wall),
        )
