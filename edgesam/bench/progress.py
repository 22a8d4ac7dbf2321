"""Progress bar over benchmark cases: tqdm when installed, else a small stderr fallback."""

from __future__ import annotations

import sys
import time
from typing import Any, Generic, Iterable, Iterator, TextIO, TypeVar

__all__ = ["SimpleProgress", "progress"]

T = TypeVar("T")


class SimpleProgress(Generic[T]):
    """Minimal tqdm stand-in: iterate, `update(n)`, `set_postfix_str(s)`, `close()`.

    On a terminal it redraws one line (at most every `min_interval` s); elsewhere (logs, CI)
    it writes a full line at most every `log_interval` s and a final line on close.
    """

    def __init__(self, iterable: Iterable[T] | None = None, *, total: int | None = None,
                 desc: str | None = None, disable: bool = False, file: TextIO | None = None,
                 min_interval: float = 0.1, log_interval: float = 10.0) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.total = total
        self.desc = desc or ""
        self.disable = disable
        self.file = file if file is not None else sys.stderr
        self.n = 0
        self.postfix = ""
        self._tty = bool(getattr(self.file, "isatty", lambda: False)())
        self._interval = min_interval if self._tty else log_interval
        self._start = time.perf_counter()
        self._last_draw = float("-inf")
        self._closed = False

    def _line(self) -> str:
        count = f"{self.n}/{self.total}" if self.total is not None else f"{self.n}"
        elapsed = time.perf_counter() - self._start
        head = f"{self.desc}: " if self.desc else ""
        tail = f" {self.postfix}" if self.postfix else ""
        return f"{head}{count} [{elapsed:.1f}s]{tail}"

    def _draw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if self.disable or (not force and now - self._last_draw < self._interval):
            return
        self._last_draw = now
        if self._tty:
            self.file.write("\r" + self._line() + "\033[K")
        else:
            self.file.write(self._line() + "\n")
        self.file.flush()

    def update(self, n: int = 1) -> None:
        """Advance by `n` steps."""
        self.n += n
        self._draw()

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """Show `s` after the counter (e.g. the case being run)."""
        self.postfix = s
        if refresh:
            self._draw()

    def close(self) -> None:
        """Draw the final state and end the line (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if not self.disable:
            self._draw(force=True)
            if self._tty:
                self.file.write("\n")
                self.file.flush()

    def __iter__(self) -> Iterator[T]:
        if self.iterable is None:
            raise TypeError("this progress bar was created without an iterable")
        try:
            for item in self.iterable:
                yield item
                self.update()
        finally:
            self.close()

    def __enter__(self) -> "SimpleProgress[T]":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(iterable: Iterable[T] | None = None, *, total: int | None = None,
             desc: str | None = None, disable: bool = False, file: TextIO | None = None,
             use_tqdm: bool | None = None) -> Any:
    """A progress bar over `iterable` (or a manual one driven by `update`).

    Uses tqdm when installed (``use_tqdm=None``), the `SimpleProgress` fallback when not or
    when ``use_tqdm=False``; ``use_tqdm=True`` requires tqdm. Writes to stderr by default.
    Both support iteration, ``update(n)``, ``set_postfix_str(s)``, ``close()`` and ``with``.
    """
    if use_tqdm is not False:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            if use_tqdm:
                raise ImportError("progress(use_tqdm=True) needs tqdm: pip install 'edgesam[bench]'")
        else:
            return tqdm(iterable, total=total, desc=desc, disable=disable,
                        file=file if file is not None else sys.stderr)
    return SimpleProgress(iterable, total=total, desc=desc, disable=disable, file=file)
