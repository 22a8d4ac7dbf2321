"""Segmenting live frames: encode in the background, decode prompts on the newest embedding.

On a robot the image encoder is the slow part (tens to hundreds of ms) and prompts arrive for
"the scene now". :class:`StreamSegmenter` runs the encoder in a background thread, fed by a
bounded slot that keeps only the newest frames (older ones are dropped, never queued), and
hands the newest encoded frame to the caller, who decodes any number of prompts on it in a
few milliseconds while the next frame is already being encoded::

    with StreamSegmenter(SamPredictor.from_bundle("bundle/")) as stream:
        stream.start("video.mp4", pace_fps=30)          # or stream.submit(frame) per frame
        tracker = Tracker(point=(320, 240))
        for frame in stream:                             # EncodedFrame, newest first
            result = tracker.update(frame)
        print(stream.stats.summary())

Each encoded frame owns a :class:`~edgesam.predictor.SamPredictor` over the shared backend,
made by the encoder thread, so decoding on it never races with the next ``set_image``.
Exceptions raised in the background threads are re-raised in the caller.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Iterator

import numpy as np

from edgesam.predictor import SamPredictor
from edgesam.predictor.images import IMAGE_FORMATS, to_rgb_uint8
from edgesam.stream.slot import LatestSlot, SlotClosed
from edgesam.stream.frames import open_source
from edgesam.stream.stats import StreamStats

__all__ = ["EncodedFrame", "StreamSegmenter"]


class _Frame:
    """A submitted frame: RGB ``uint8 [H, W, 3]``, its stream index and submission time."""

    __slots__ = ("image", "index", "submitted_at")

    def __init__(self, image: np.ndarray, index: int, submitted_at: float) -> None:
        self.image, self.index, self.submitted_at = image, index, submitted_at


class EncodedFrame:
    """A frame with its image embedding, ready for prompts.

    Attributes:
        index: position of the frame in the stream (0-based, dropped frames included).
        image: the frame, RGB ``uint8 [H, W, 3]``.
        predictor: a :class:`SamPredictor` holding this frame's embedding (used only here).
        submitted_at: clock time at which the frame entered the stream.
        encode_ms: time spent encoding it.

    :meth:`predict` and :meth:`predict_batch` are those of ``SamPredictor`` and also record
    decode time and (for the first call) the frame's end-to-end latency in the stream stats.
    """

    def __init__(self, frame: _Frame, predictor: SamPredictor, encode_ms: float, stats: StreamStats,
                 clock: Callable[[], float]) -> None:  # fmt: skip
        self.index = frame.index
        self.image = frame.image
        self.predictor = predictor
        self.submitted_at = frame.submitted_at
        self.encode_ms = encode_ms
        self._stats = stats
        self._clock = clock
        self._lock = threading.Lock()
        self._decoded = False

    @property
    def original_size(self) -> tuple[int, int]:
        """``(H, W)`` of the frame."""
        return (int(self.image.shape[0]), int(self.image.shape[1]))

    def _timed(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        start = self._clock()
        out = fn(*args, **kwargs)
        end = self._clock()
        with self._lock:
            first, self._decoded = not self._decoded, True
        latency = (end - self.submitted_at) * 1000.0 if first else None
        self._stats.record_decode((end - start) * 1000.0, latency_ms=latency)
        return out

    def predict(self, *args: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`SamPredictor.predict` on this frame: ``masks [C, H, W]``, ``scores [C]``,
        ``low_res_logits [C, 4h, 4w]``."""
        return self._timed(self.predictor.predict, *args, **kwargs)

    def predict_batch(self, *args: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`SamPredictor.predict_batch` on this frame (``[B, C, H, W]`` masks, ...)."""
        return self._timed(self.predictor.predict_batch, *args, **kwargs)


def _backend_of(obj: Any) -> Any:
    if isinstance(obj, SamPredictor):
        return obj.backend
    return SamPredictor(obj).backend  # validates; wraps a torch model once


class StreamSegmenter:
    """Encode frames in a background thread; hand out the newest embedding.

    Args:
        predictor_or_backend: a :class:`SamPredictor` (its backend is used), a runtime
            ``Backend`` or a torch ``Sam`` model.
        max_latency_frames: frames that may wait for the encoder (>= 1). When a new frame
            arrives and this many are waiting, the oldest is dropped, so a frame waits at most
            this many encoder passes before its own.
        image_format: channel order of submitted arrays, ``"RGB"`` or ``"BGR"`` (frames read
            by OpenCV through :meth:`start` are converted automatically).
        stats_window: latency samples kept for the percentiles.
        clock: time source in seconds.

    Use as a context manager (or call :meth:`stop`): threads are joined on exit.
    """

    def __init__(
        self,
        predictor_or_backend: Any,
        *,
        max_latency_frames: int = 1,
        image_format: str = "RGB",
        stats_window: int = 1000,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format must be in {list(IMAGE_FORMATS)}, is {image_format!r}")
        if isinstance(max_latency_frames, bool) or not isinstance(max_latency_frames, int) or max_latency_frames < 1:
            raise ValueError(f"max_latency_frames must be an integer >= 1, got {max_latency_frames!r}")
        self.backend = _backend_of(predictor_or_backend)
        self.image_format = image_format
        self.stats = StreamStats(window=stats_window, clock=clock)
        self._clock = clock
        self._inbox: LatestSlot[_Frame] = LatestSlot(max_latency_frames)
        self._outbox: LatestSlot[EncodedFrame] = LatestSlot(1)
        self._lossless = False
        self._next_index = 0
        self._index_lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._error: BaseException | None = None
        self._error_raised = False
        self._encoder: threading.Thread | None = None
        self._reader: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> StreamSegmenter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.stop(reraise=exc is None)

    def _ensure_encoder(self) -> None:
        with self._index_lock:
            if self._encoder is None:
                if self._stopping.is_set():
                    raise RuntimeError("the stream was stopped; make a new StreamSegmenter")
                encoder = threading.Thread(target=self._encode_loop, name="edgesam-stream-encoder", daemon=True)
                self._threads.append(encoder)
                encoder.start()
                self._encoder = encoder

    def start(self, source: Any = None, *, pace_fps: float | None = None, drop: bool = True) -> StreamSegmenter:
        """Start the encoder thread and, with ``source``, a thread reading frames from it.

        Args:
            source: anything :func:`~edgesam.stream.frames.open_source` takes (frames array,
                ``cv2.VideoCapture``, video path, camera index, iterable). The stream ends
                after its last frame. Without a source, feed frames with :meth:`submit`.
            pace_fps: submit at most this many frames per second (emulates a live camera when
                reading a file); None reads as fast as the source gives frames.
            drop: drop stale frames (live behaviour). False waits for the encoder instead, so
                every frame is encoded and delivered (offline processing).
        """
        if pace_fps is not None and not pace_fps > 0:
            raise ValueError(f"pace_fps must be > 0, got {pace_fps}")
        if source is not None and self._reader is not None:
            raise RuntimeError("a source is already being read; one StreamSegmenter streams one source")
        self._lossless = not drop
        self._ensure_encoder()
        if source is not None:
            frames = open_source(source)  # errors in opening surface here, in the caller
            reader = threading.Thread(target=self._read_loop, args=(frames, pace_fps), name="edgesam-stream-reader",
                                      daemon=True)  # fmt: skip
            self._reader = reader
            self._threads.append(reader)
            reader.start()
        return self

    def stop(self, timeout: float | None = 30.0, *, reraise: bool = True) -> None:
        """Stop the threads (pending frames are discarded) and join them.

        Raises:
            TimeoutError: a thread is still running after ``timeout`` seconds.
            The first exception of a background thread, if the caller has not seen it yet
            (unless ``reraise`` is False).
        """
        self._stopping.set()
        self._inbox.close(discard=True)
        self._outbox.close(discard=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        if alive:
            raise TimeoutError(f"stream thread(s) {alive} did not stop within {timeout} s")
        if reraise:
            self._raise_error()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the threads have finished on their own (source exhausted and :meth:`end`)."""
        for thread in self._threads:
            thread.join(timeout)

    def end(self) -> None:
        """No more frames will be submitted: the stream ends once the waiting ones are delivered."""
        self._inbox.close()

    @property
    def running(self) -> bool:
        """Whether a background thread is alive."""
        return any(t.is_alive() for t in self._threads)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._inbox.close(discard=True)
        self._outbox.close()

    def _raise_error(self) -> None:
        if self._error is not None and not self._error_raised:
            self._error_raised = True
            raise self._error

    # ------------------------------------------------------------------ producer side
    def submit(self, frame: np.ndarray, *, image_format: str | None = None, block: bool | None = None,
               timeout: float | None = None) -> int:  # fmt: skip
        """Hand a frame to the encoder; returns its stream index.

        Args:
            frame: ``uint8 [H, W, 3]`` (anything ``SamPredictor.set_image`` accepts). It is
                copied, so the caller may reuse the buffer.
            image_format: channel order of this frame (default: the segmenter's).
            block: wait for room instead of dropping the oldest waiting frame (default: the
                ``drop`` setting of :meth:`start`).
            timeout: with ``block``, seconds to wait at most.

        Raises:
            TypeError / ValueError: an invalid frame (checked here, in the caller's thread).
            RuntimeError: the stream was stopped or ended.
            The background thread's exception, if one failed.
        """
        self._raise_error()
        try:
            return self._put(frame, image_format or self.image_format, self._lossless if block is None else block,
                             timeout)  # fmt: skip
        except SlotClosed:
            self._raise_error()
            raise RuntimeError("the stream is stopped or ended; no more frames can be submitted") from None

    def _put(self, frame: np.ndarray, image_format: str, block: bool, timeout: float | None) -> int:
        """Validate, copy and hand over one frame (raises ``SlotClosed`` when closed)."""
        rgb = to_rgb_uint8(frame, image_format)
        if np.shares_memory(rgb, np.asarray(frame)):
            rgb = rgb.copy()
        self._ensure_encoder()
        with self._index_lock:
            index = self._next_index
            self._next_index += 1
        displaced = self._inbox.put(_Frame(rgb, index, self._clock()), block=block, timeout=timeout)
        self.stats.count("submitted")
        if displaced is not None:
            self.stats.count("dropped")
        return index

    def _read_loop(self, source: Any, pace_fps: float | None) -> None:
        try:
            start = time.monotonic()
            for i, frame in enumerate(source.frames):
                if self._stopping.is_set():
                    break
                if pace_fps is not None:
                    wait = start + i / pace_fps - time.monotonic()
                    if wait > 0 and self._stopping.wait(wait):
                        break
                try:
                    self._put(frame, source.image_format or self.image_format, self._lossless, None)
                except SlotClosed:
                    break  # stopped, or the encoder failed
            self._inbox.close()  # end of the source: deliver what waits, then finish
        except BaseException as exc:  # noqa: BLE001 -- handed to the caller
            self._fail(exc)
        finally:
            source.close()

    # ------------------------------------------------------------------ encoder thread
    def _encode_loop(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    frame = self._inbox.get()
                except SlotClosed:
                    break
                start = self._clock()
                predictor = SamPredictor(self.backend)
                predictor.set_image(frame.image)
                encoded = EncodedFrame(frame, predictor, (self._clock() - start) * 1000.0, self.stats, self._clock)
                self.stats.record_encode(encoded.encode_ms)
                try:
                    displaced = self._outbox.put(encoded, block=self._lossless)
                except SlotClosed:
                    break
                if displaced is not None:
                    self.stats.count("skipped")
            self._outbox.close()
        except BaseException as exc:  # noqa: BLE001 -- handed to the caller
            self._fail(exc)

    # ------------------------------------------------------------------ consumer side
    def next(self, timeout: float | None = None) -> EncodedFrame | None:
        """The newest encoded frame not handed out yet; waits for one.

        Returns None once the stream has ended (source exhausted or :meth:`end`, and every
        encoded frame delivered) or was stopped.

        Raises:
            TimeoutError: nothing new within ``timeout`` seconds.
            The exception of a failed background thread.
        """
        self._raise_error()
        if self._encoder is None:
            raise RuntimeError("call start() (or submit()) before asking for frames")
        try:
            frame = self._outbox.get(timeout)
        except SlotClosed:
            self._raise_error()
            return None
        self.stats.count("delivered")
        return frame

    def __iter__(self) -> Iterator[EncodedFrame]:
        """Encoded frames until the stream ends (see :meth:`next`)."""
        while True:
            frame = self.next()
            if frame is None:
                return
            yield frame
