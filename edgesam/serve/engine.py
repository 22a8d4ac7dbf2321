"""The server's inference side: one shared backend, worker pools, the embedding cache, a bounded queue.

Encodes ("segment everything" too) run on ``encode_workers`` threads behind a queue of at most
``queue_size`` waiting jobs; a job that does not fit is refused with :class:`QueueFull` (the API
answers 503 + Retry-After) instead of piling up. Decodes run on their own ``decode_workers``
threads so clicks stay fast while an encode runs. Each job gets its own predictor over the one
backend (backends are thread-safe; per-image state lives in predictors).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, TypeVar

import numpy as np

from edgesam.predictor import SamPredictor
from edgesam.predictor.predictor import _ImageState
from edgesam.serve.cache import CachedImage, EmbeddingCache
from edgesam.serve.images import decode_image

__all__ = ["CachedPredictor", "Engine", "QueueFull"]

T = TypeVar("T")


class QueueFull(RuntimeError):
    """The encode queue is full; ``retry_after`` is a suggested wait in whole seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"encode queue full; retry in {retry_after} s")
        self.retry_after = retry_after


class CachedPredictor(SamPredictor):
    """A :class:`SamPredictor` that starts from a cached embedding instead of running the encoder.

    ``set_image`` of the exact cached image (as "segment everything" calls it for the uncropped
    image) reuses the embedding too; any other image (a crop) is encoded as usual.
    """

    def __init__(self, backend: Any, entry: CachedImage, image: np.ndarray | None = None) -> None:
        super().__init__(backend)
        self._entry = entry
        self._image = image
        self._use_entry()

    def _use_entry(self) -> None:
        self._state = _ImageState(self._entry.features, self._entry.original_size, self._entry.input_size)

    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        if (
            self._image is not None
            and image_format == "RGB"
            and image.shape == self._image.shape
            and np.array_equal(image, self._image)
        ):
            self._use_entry()
            return
        super().set_image(image, image_format)


class Engine:
    """Encodes uploads once, caches embeddings, runs decodes and segment-everything.

    Args:
        backend: a runtime backend (or torch ``Sam`` model) shared by every worker.
        cache_bytes: embedding cache budget in bytes.
        encode_workers: threads running encodes.
        decode_workers: threads running decodes.
        queue_size: encodes allowed to wait beyond those running.
        max_pixels: largest accepted image (height x width).
    """

    def __init__(
        self,
        *,
        backend: Any,
        cache_bytes: int = 512 << 20,
        encode_workers: int = 1,
        decode_workers: int = 2,
        queue_size: int = 4,
        max_pixels: int = 40_000_000,
    ) -> None:
        if encode_workers < 1 or decode_workers < 1 or queue_size < 0:
            raise ValueError("encode_workers and decode_workers must be >= 1 and queue_size >= 0")
        self.backend = SamPredictor(backend).backend
        self.cache = EmbeddingCache(max_bytes=cache_bytes)
        self.max_pixels = int(max_pixels)
        self._capacity = encode_workers + queue_size
        self._pending = 0
        self._lock = threading.Lock()
        self._encode_pool = ThreadPoolExecutor(encode_workers, thread_name_prefix="edgesam-encode")
        self._decode_pool = ThreadPoolExecutor(decode_workers, thread_name_prefix="edgesam-decode")
        self._encode_workers = encode_workers
        self._mean_encode = 1.0  # seconds, running mean for Retry-After

    def warm_up(self) -> tuple[int, ...]:
        """Run the encoder and the decoder once on a blank image; returns the embedding shape."""
        predictor = SamPredictor(self.backend)
        size = int(self.backend.image_size)
        predictor.set_image(np.zeros((size, size, 3), dtype=np.uint8))
        predictor.predict(np.array([[size / 2, size / 2]]), np.array([1]))
        return tuple(int(v) for v in predictor.get_image_embedding().shape)

    @property
    def queue_depth(self) -> int:
        """Encode jobs waiting or running."""
        return self._pending

    def close(self) -> None:
        """Stop the worker threads (waiting for running jobs)."""
        self._encode_pool.shutdown(wait=True, cancel_futures=True)
        self._decode_pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ scheduling
    def submit_encode_job(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn`` on the encode pool, or raise :class:`QueueFull` when the queue is full."""
        with self._lock:
            if self._pending >= self._capacity:
                wait = self._mean_encode * (self._pending + 1) / self._encode_workers
                raise QueueFull(max(1, math.ceil(wait)))
            self._pending += 1
        try:
            future = self._encode_pool.submit(fn)
        except BaseException:
            with self._lock:
                self._pending -= 1
            raise
        future.add_done_callback(self._job_done)
        return future

    def _job_done(self, _: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1

    def submit_decode_job(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn`` on the decode pool."""
        return self._decode_pool.submit(fn)

    # ------------------------------------------------------------------ work (run in the pools)
    @staticmethod
    def image_id(data: bytes) -> str:
        """The content hash naming an upload (sha256, hex)."""
        return hashlib.sha256(data).hexdigest()

    def encode(self, data: bytes, image_id: str | None = None) -> CachedImage:
        """Decode and encode an upload, cache and return it (a cache hit skips the encoder)."""
        image_id = image_id or self.image_id(data)
        cached = self.cache.peek(image_id)  # encoded meanwhile by another request
        if cached is not None:
            return cached
        image = decode_image(data, max_pixels=self.max_pixels)
        predictor = SamPredictor(self.backend)
        start = time.perf_counter()
        predictor.set_image(image)
        seconds = time.perf_counter() - start
        self._mean_encode = 0.8 * self._mean_encode + 0.2 * seconds
        entry = CachedImage(
            image_id=image_id,
            features=predictor.get_image_embedding(),
            original_size=predictor.original_size,  # type: ignore[arg-type]
            input_size=predictor.input_size,  # type: ignore[arg-type]
            data=data,
            encode_seconds=seconds,
        )
        self.cache.put(entry)
        return entry

    def predictor(self, entry: CachedImage, image: np.ndarray | None = None) -> CachedPredictor:
        """A predictor holding ``entry``'s embedding (``image``: the decoded upload, for everything)."""
        return CachedPredictor(self.backend, entry, image)
