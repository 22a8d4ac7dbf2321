"""Read ahead: iterate a generator in a background thread, a bounded number of items ahead.

Bag reading (chunk decompression, deserialization, JPEG decoding) then overlaps with the
image encoder instead of adding to it; the bound keeps memory flat on long bags.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Iterator, TypeVar

__all__ = ["Prefetcher"]

T = TypeVar("T")
_END = object()


class Prefetcher(Iterator[T]):
    """Iterate ``items`` in a thread, at most ``depth`` items ahead of the consumer.

    Exceptions raised by ``items`` are re-raised in the consumer at the position they
    occurred. :attr:`wait_ms` is the time the consumer spent waiting for an item (the part of
    the reading that was not hidden). Call :meth:`close` (or exhaust it) to stop the thread.
    """

    def __init__(self, items: Iterator[T], *, depth: int = 2) -> None:
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._items = items
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self.wait_ms = 0.0
        self._done = False
        self._thread = threading.Thread(target=self._run, name="edgesam-bag-reader", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._items:
                if not self._put(("item", item)):
                    return
            self._put(("end", None))
        except BaseException as exc:  # handed to the consumer
            self._put(("error", exc))

    def __iter__(self) -> Prefetcher[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        start = time.perf_counter()
        kind, value = self._queue.get()  # type: ignore[misc]
        self.wait_ms += (time.perf_counter() - start) * 1000.0
        if kind == "item":
            return value  # type: ignore[return-value]
        self._done = True
        self._thread.join()
        if kind == "error":
            raise value  # type: ignore[misc]
        raise StopIteration

    def close(self) -> None:
        """Stop reading ahead and join the thread."""
        self._stop.set()
        self._done = True
        self._thread.join()
