"""Prometheus metrics of one server (its own registry, so several apps can live in one process)."""

from __future__ import annotations

from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from edgesam.serve.cache import EmbeddingCache

__all__ = ["CONTENT_TYPE_LATEST", "ServeMetrics"]

_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_SLOW = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class ServeMetrics:
    """Request counts by route and status, stage latencies, cache and queue state."""

    def __init__(self, cache: EmbeddingCache, queue_depth: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("edgesam_http_requests", "HTTP requests by route and status",
                                ("method", "route", "status"), registry=r)
        self.request_seconds = Histogram("edgesam_http_request_seconds", "HTTP request latency by route",
                                         ("route",), buckets=_SLOW, registry=r)
        self.encode_seconds = Histogram("edgesam_encode_seconds", "image encoder time", buckets=_SLOW, registry=r)
        self.decode_seconds = Histogram("edgesam_decode_seconds", "prompt decoder time (one request)",
                                        buckets=_FAST, registry=r)
        self.everything_seconds = Histogram("edgesam_everything_seconds", "segment-everything time",
                                            buckets=_SLOW, registry=r)
        self.rejected = Counter("edgesam_encode_rejected", "encodes refused with 503 (queue full)", registry=r)
        Gauge("edgesam_cache_bytes", "bytes held by the embedding cache", registry=r).set_function(lambda: cache.nbytes)
        Gauge("edgesam_cache_entries", "images in the embedding cache", registry=r).set_function(lambda: len(cache))
        Gauge("edgesam_cache_max_bytes", "embedding cache budget", registry=r).set_function(lambda: cache.max_bytes)
        Gauge("edgesam_cache_hits", "embedding cache hits since start", registry=r).set_function(lambda: cache.hits)
        Gauge("edgesam_cache_misses", "embedding cache misses since start", registry=r).set_function(
            lambda: cache.misses)
        Gauge("edgesam_cache_hit_ratio", "hits / (hits + misses) since start", registry=r).set_function(
            lambda: cache.hits / max(1, cache.hits + cache.misses))
        Gauge("edgesam_encode_queue_depth", "encodes waiting or running", registry=r).set_function(queue_depth)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
