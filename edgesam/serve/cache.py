"""An LRU cache of image embeddings bounded in bytes (thread-safe)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

__all__ = ["CachedImage", "EmbeddingCache"]


@dataclass(frozen=True)
class CachedImage:
    """One encoded image.

    Attributes:
        image_id: sha256 of the uploaded bytes (hex).
        features: float32 ``[1, C, h, w]`` embedding.
        original_size: ``(H, W)`` of the image.
        input_size: ``(h, w)`` of the resized image inside the ``S x S`` model input.
        data: the uploaded (compressed) file, kept so "segment everything" can decode it again.
        encode_seconds: time the encoder took.
    """

    image_id: str
    features: np.ndarray
    original_size: tuple[int, int]
    input_size: tuple[int, int]
    data: bytes = field(repr=False)
    encode_seconds: float

    @property
    def nbytes(self) -> int:
        """Bytes this entry holds (embedding + uploaded file)."""
        return int(self.features.nbytes) + len(self.data)


class EmbeddingCache:
    """Least-recently-used cache of :class:`CachedImage`, at most ``max_bytes`` in total.

    An entry larger than the whole budget is not kept (``put`` returns False). Hits and misses
    of :meth:`get` are counted for the metrics.
    """

    def __init__(self, *, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[str, CachedImage] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, image_id: object) -> bool:
        with self._lock:
            return image_id in self._items

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        with self._lock:
            return self._bytes

    def get(self, image_id: str) -> CachedImage | None:
        """The entry (now most recently used), or None."""
        with self._lock:
            item = self._items.get(image_id)
            if item is None:
                self.misses += 1
                return None
            self.hits += 1
            self._items.move_to_end(image_id)
            return item

    def peek(self, image_id: str) -> CachedImage | None:
        """The entry without counting a hit or miss or changing the order."""
        with self._lock:
            return self._items.get(image_id)

    def put(self, item: CachedImage) -> bool:
        """Insert (or refresh) ``item``, evicting the least recently used entries to fit."""
        size = item.nbytes
        with self._lock:
            old = self._items.pop(item.image_id, None)
            if old is not None:
                self._bytes -= old.nbytes
            if size > self.max_bytes:
                return False
            while self._items and self._bytes + size > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._bytes -= evicted.nbytes
            self._items[item.image_id] = item
            self._bytes += size
            return True
