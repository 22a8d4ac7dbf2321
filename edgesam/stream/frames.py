"""Frame sources for streams: arrays, OpenCV captures, video files, cameras, iterators."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

__all__ = ["FrameSource", "open_source"]


@dataclass
class FrameSource:
    """Frames to stream, with what is known about them.

    Attributes:
        frames: iterator of ``[H, W, C]`` arrays.
        image_format: ``"BGR"`` for frames read by OpenCV; None when the frames are in
            whatever order the caller says (the segmenter's ``image_format``).
        fps: the source's nominal frame rate, when known (video files, cameras).
        close: releases what was opened here (a capture given by the caller is not released).
    """

    frames: Iterator[np.ndarray]
    image_format: str | None = None
    fps: float | None = None
    close: Callable[[], None] = field(default=lambda: None)


def _is_capture(obj: Any) -> bool:
    return hasattr(obj, "read") and hasattr(obj, "isOpened") and callable(obj.read)


def _read_capture(cap: Any) -> Iterator[np.ndarray]:
    while True:
        ok, frame = cap.read()
        if not ok or frame is None:
            return
        yield frame


def _capture_fps(cap: Any) -> float | None:
    import cv2

    fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
    return fps if np.isfinite(fps) and 0.0 < fps < 1000.0 else None


def _open_capture(source: str | int) -> FrameSource:
    import cv2

    if isinstance(source, str) and not Path(source).is_file():
        raise FileNotFoundError(f"video not found: {source}")
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        cap.release()
        what = f"camera {source}" if isinstance(source, int) else f"video {source}"
        raise ValueError(f"OpenCV could not open {what} (unsupported format or codec, or device busy)")
    return FrameSource(_read_capture(cap), image_format="BGR", fps=_capture_fps(cap), close=cap.release)


def open_source(source: Any) -> FrameSource:
    """Wrap ``source`` as a :class:`FrameSource`.

    Args:
        source: one of
            * a :class:`FrameSource` (returned as is);
            * a numpy array: ``[T, H, W, C]`` is a stack of ``T`` frames, a 2-D or 3-D array
              is a single frame;
            * a ``cv2.VideoCapture`` (or anything with ``read() -> (ok, frame)`` and
              ``isOpened()``); its frames are BGR; it is not released at the end;
            * a path to a video file (str or ``os.PathLike``), or an ``int`` camera index:
              opened with OpenCV and released at the end;
            * any other iterable of frames.

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: OpenCV cannot open the file or camera, or the capture is not opened.
        TypeError: anything else.
    """
    if isinstance(source, FrameSource):
        return source
    if isinstance(source, np.ndarray):
        stack = source if source.ndim == 4 else source[None]
        return FrameSource(iter(list(stack)))
    if _is_capture(source):
        if not source.isOpened():
            raise ValueError("the cv2.VideoCapture is not opened")
        return FrameSource(_read_capture(source), image_format="BGR", fps=_capture_fps(source))
    if isinstance(source, (str, os.PathLike)):
        return _open_capture(os.fspath(source))
    if isinstance(source, int) and not isinstance(source, bool):
        return _open_capture(source)
    if isinstance(source, Iterable):
        it = iter(source)
        close = getattr(it, "close", None)
        return FrameSource(it, close=close if callable(close) else (lambda: None))
    raise TypeError(
        f"cannot stream frames from {type(source).__name__}: give a numpy array, a cv2.VideoCapture, "
        "a video path, a camera index or an iterable of frames"
    )
