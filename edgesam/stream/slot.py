"""A bounded hand-over buffer between threads that keeps the newest items.

Live sources (cameras) produce frames at their own pace; when the consumer is slower, a plain
queue grows without bound and every result comes later than the one before. :class:`LatestSlot`
instead holds at most ``capacity`` items: putting into a full slot discards the oldest item
(and counts it), so the consumer always gets the freshest data and the delay stays bounded.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

__all__ = ["LatestSlot", "SlotClosed"]

T = TypeVar("T")


class SlotClosed(Exception):
    """The slot was closed: nothing more can be put, and it has been drained."""


class LatestSlot(Generic[T]):
    """Thread-safe buffer of at most ``capacity`` items that replaces the oldest when full.

    Args:
        capacity: items held at once (>= 1); 1 gives "latest value" semantics.

    Attributes:
        dropped: items discarded because a newer one arrived while the slot was full.
    """

    def __init__(self, capacity: int = 1) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be an integer >= 1, got {capacity!r}")
        self.capacity = capacity
        self.dropped = 0
        self._items: deque[T] = deque()
        self._closed = False
        self._cond = threading.Condition()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: T, *, block: bool = False, timeout: float | None = None) -> T | None:
        """Add ``item``; returns the item it displaced (None if there was room).

        Args:
            item: the new item.
            block: wait for room instead of displacing the oldest item (lossless hand-over).
            timeout: with ``block``, seconds to wait at most (None: forever).

        Raises:
            SlotClosed: the slot is closed (also raised to a blocked caller when it closes).
            TimeoutError: ``block`` and no room within ``timeout``.
        """
        with self._cond:
            if block:
                deadline = None if timeout is None else time.monotonic() + timeout
                while not self._closed and len(self._items) >= self.capacity:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise TimeoutError(f"no room in the slot within {timeout} s")
                    self._cond.wait(left)
            if self._closed:
                raise SlotClosed("slot is closed")
            displaced = None
            if len(self._items) >= self.capacity:
                displaced = self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify_all()
            return displaced

    def get(self, timeout: float | None = None) -> T:
        """Remove and return the oldest held item, waiting for one if the slot is empty.

        Raises:
            SlotClosed: the slot is closed and empty.
            TimeoutError: nothing arrived within ``timeout`` seconds.
        """
        with self._cond:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._items:
                if self._closed:
                    raise SlotClosed("slot is closed")
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"nothing arrived within {timeout} s")
                self._cond.wait(left)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self, *, discard: bool = False) -> list[T]:
        """Refuse further puts and wake every waiter.

        Items already held can still be taken with :meth:`get` unless ``discard`` is set, in
        which case they are removed and returned (not counted as dropped).
        """
        with self._cond:
            self._closed = True
            removed: list[T] = []
            if discard:
                removed = list(self._items)
                self._items.clear()
            self._cond.notify_all()
            return removed
