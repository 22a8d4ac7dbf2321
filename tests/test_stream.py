"""Streams: bounded hand-over, background encoding, shutdown, error propagation, sources."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from stream_doubles import ColourBackend, disc_frame, disc_video, iou

from edgesam.predictor import SamPredictor
from edgesam.stream import LatestSlot, SlotClosed, StreamSegmenter, StreamStats, Tracker, open_source

# --------------------------------------------------------------------------- slot


def test_slot_keeps_the_newest_and_counts_drops() -> None:
    slot: LatestSlot[int] = LatestSlot(2)
    assert slot.put(1) is None and slot.put(2) is None
    assert slot.put(3) == 1 and slot.put(4) == 2
    assert slot.dropped == 2 and len(slot) == 2
    assert slot.get() == 3 and slot.get() == 4
    with pytest.raises(TimeoutError):
        slot.get(timeout=0.01)


def test_slot_close_drains_then_refuses() -> None:
    slot: LatestSlot[str] = LatestSlot(1)
    slot.put("a")
    slot.close()
    with pytest.raises(SlotClosed):
        slot.put("b")
    assert slot.get() == "a"
    with pytest.raises(SlotClosed):
        slot.get()
    other: LatestSlot[str] = LatestSlot(1)
    other.put("x")
    assert other.close(discard=True) == ["x"] and other.dropped == 0


def test_slot_blocking_put_waits_for_room_and_wakes_on_close() -> None:
    slot: LatestSlot[int] = LatestSlot(1)
    slot.put(1)
    with pytest.raises(TimeoutError):
        slot.put(2, block=True, timeout=0.02)
    got: list[int] = []
    taker = threading.Timer(0.05, lambda: got.append(slot.get()))
    taker.start()
    slot.put(2, block=True, timeout=5)  # room appears when the timer takes item 1
    taker.join()
    assert got == [1] and slot.get() == 2 and slot.dropped == 0
    slot.put(3)
    errors: list[BaseException] = []

    def blocked() -> None:
        try:
            slot.put(4, block=True)
        except SlotClosed as exc:
            errors.append(exc)

    t = threading.Thread(target=blocked)
    t.start()
    time.sleep(0.05)
    slot.close()
    t.join(5)
    assert not t.is_alive() and len(errors) == 1
    with pytest.raises(ValueError):
        LatestSlot(0)


# --------------------------------------------------------------------------- segmenter


def test_every_frame_mode_delivers_all_frames_in_order() -> None:
    frames, discs = disc_video(12)
    with StreamSegmenter(ColourBackend()) as stream:
        stream.start(frames, drop=False)
        # one decode per frame ("auto" checks one twice; the default candidates decode three)
        tracker = Tracker(point=(28, 40), use_mask_input=True, candidates=False)
        indices, ious = [], []
        for encoded in stream:
            indices.append(encoded.index)
            ious.append(iou(tracker.update(encoded).mask, discs[encoded.index]))
    assert indices == list(range(12)) and min(ious) > 0.5
    s = stream.stats.summary()
    assert (s.frames_submitted, s.frames_encoded, s.frames_delivered, s.frames_decoded) == (12, 12, 12, 12)
    assert s.frames_dropped == 0 and s.frames_skipped == 0
    assert s.latency.n == 12 and s.decode.n == 12 and s.encode.n == 12 and s.fps > 0
    assert s.latency.p50_ms <= s.latency.p90_ms and np.isfinite(s.encode.p90_ms)
    assert "FPS" in str(s) and set(s.to_dict()["latency"]) == {"n", "p50_ms", "p90_ms", "mean_ms", "max_ms"}


def test_stale_frames_are_dropped_when_the_producer_is_faster() -> None:
    backend = ColourBackend(encode_delay=0.03)
    frames, _ = disc_video(40)
    with StreamSegmenter(backend, max_latency_frames=1) as stream:
        stream.start()
        delivered = []
        consumer = threading.Thread(target=lambda: delivered.extend(e.index for e in stream))
        consumer.start()
        for frame in frames:
            stream.submit(frame)
            time.sleep(0.002)
        stream.end()
        consumer.join(30)
    s = stream.stats.summary()
    assert s.frames_submitted == 40 and s.frames_dropped > 10
    assert s.frames_encoded + s.frames_dropped == 40 == backend.encode_calls + s.frames_dropped
    assert s.frames_delivered == len(delivered) == s.frames_encoded - s.frames_skipped
    assert delivered == sorted(delivered) and delivered[-1] == 39  # the newest frame is never dropped


def test_consumer_gets_the_newest_embedding() -> None:
    with StreamSegmenter(ColourBackend()) as stream:
        for frame in disc_video(5)[0]:
            stream.submit(frame)
            time.sleep(0.05)  # each frame is encoded before the next arrives
        stream.end()
        stream.join(10)
        newest = stream.next(timeout=5)
        assert newest is not None and newest.index == 4 and stream.next(timeout=5) is None
    s = stream.stats.summary()
    assert s.frames_skipped + s.frames_dropped == 4 and s.frames_delivered == 1


def test_stop_joins_an_endless_source_cleanly() -> None:
    frame = disc_frame(0)[0]
    stream = StreamSegmenter(ColourBackend(encode_delay=0.005))
    stream.start(itertools.repeat(frame))
    got = [stream.next(timeout=10) for _ in range(3)]
    assert all(g is not None for g in got)
    stream.stop(timeout=10)
    assert not stream.running and stream.next(timeout=1) is None
    with pytest.raises(RuntimeError, match="stopped"):
        stream.submit(frame)


def test_breaking_out_of_the_with_block_stops_the_threads() -> None:
    with StreamSegmenter(ColourBackend()) as stream:
        stream.start(itertools.repeat(disc_frame(0)[0]), drop=False)
        for encoded in stream:
            encoded.predict(point_coords=np.array([[28, 40]]), point_labels=np.array([1]))
            break
    assert not stream.running


def test_source_exception_surfaces_in_the_caller() -> None:
    def camera():
        yield from disc_video(3)[0]
        raise OSError("camera unplugged")

    stream = StreamSegmenter(ColourBackend())
    stream.start(camera(), drop=False)
    with pytest.raises(OSError, match="camera unplugged"):
        for _ in stream:
            pass
    stream.stop()  # already reported: not raised again
    assert not stream.running


def test_encoder_exception_and_bad_frames_surface() -> None:
    backend = ColourBackend()
    backend.fail_on_encode = 2
    with pytest.raises(RuntimeError, match="encoder failure on call 2"):
        with StreamSegmenter(backend) as stream:
            stream.start(disc_video(6)[0], drop=False)
            for _ in stream:
                pass
    bad = [disc_frame(0)[0], np.full((8, 8, 3), np.nan, np.float32)]
    with StreamSegmenter(ColourBackend()) as stream:
        stream.start(iter(bad), drop=False)
        with pytest.raises(ValueError, match="NaN"):
            list(stream)
    with StreamSegmenter(ColourBackend()) as stream:
        with pytest.raises(ValueError, match="channels"):
            stream.submit(np.zeros((8, 8, 2), np.uint8))  # checked in the caller's thread
    backend = ColourBackend()
    backend.fail_on_encode = 0
    stream = StreamSegmenter(backend)
    stream.submit(disc_frame(0)[0])
    deadline = time.monotonic() + 10
    while stream.running and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(RuntimeError, match="encoder failure"):  # not seen by the caller yet: stop() raises it
        stream.stop()


def test_stats_window_is_bounded() -> None:
    stats = StreamStats(window=5)
    for i in range(100):
        stats.count("submitted")
        stats.record_encode(float(i))
        stats.record_decode(1.0, latency_ms=float(i))
    s = stats.summary()
    assert s.encode.n == 5 and s.encode.p50_ms == 97.0 and s.frames_encoded == 100 and s.frames_decoded == 100
    empty = StreamStats().summary()
    assert empty.latency.n == 0 and np.isnan(empty.latency.p50_ms) and empty.fps == 0.0


# --------------------------------------------------------------------------- sources


def _write_video(path: Path, frames: np.ndarray, fps: float = 25.0) -> Path:
    import cv2

    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def test_video_file_and_capture_sources_are_converted_from_bgr(tmp_path: Path) -> None:
    import cv2

    frames, discs = disc_video(6)
    video = _write_video(tmp_path / "disc.mp4", frames)
    source = open_source(str(video))
    assert source.image_format == "BGR" and source.fps == pytest.approx(25.0)
    source.close()
    for src in (video, cv2.VideoCapture(str(video))):
        with StreamSegmenter(ColourBackend()) as stream:
            stream.start(src, drop=False)
            got = list(stream)
        assert [g.index for g in got] == list(range(6))
        red = got[0].image[discs[0]].mean(axis=0)
        assert red[0] > 200 and red[2] < 80  # RGB order, as submitted arrays
    with pytest.raises(FileNotFoundError):
        open_source(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match="could not open"):
        open_source(tmp_path / "junk.mp4")
    with pytest.raises(TypeError, match="cannot stream"):
        open_source(3.5)


def test_pacing_emulates_a_camera() -> None:
    frames, _ = disc_video(10)
    start = time.perf_counter()
    with StreamSegmenter(ColourBackend()) as stream:
        stream.start(frames, pace_fps=50.0, drop=False)
        n = sum(1 for _ in stream)
    assert n == 10 and time.perf_counter() - start >= 9 / 50.0


# --------------------------------------------------------------------------- real models


def test_stream_with_the_demo_model_and_cli(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    import cv2

    import edgesam
    from edgesam.cli import main

    frames, discs = disc_video(16)
    model = edgesam.load_model("edgesam-demo")
    with StreamSegmenter(SamPredictor(model)) as stream:
        stream.start(frames, drop=False)
        # the demo model was not trained with mask prompts: re-prompt with box + click only
        tracker = Tracker(box=(14, 26, 42, 54), use_mask_input=False)
        results = [tracker.update(e) for e in stream]
    assert len(results) == 16 and all(r.mask.shape == (96, 128) for r in results)
    ious = [iou(r.mask, d) for r, d in zip(results, discs)]
    # a trained model follows the disc; measured: lowest IoU 0.73, 16 of 16 frames >= 0.5 (the
    # previous demo model: lowest 0.42, 12 of 16)
    assert min(ious) > 0.6 and np.mean(np.array(ious) >= 0.5) >= 0.9, np.round(ious, 2)
    frames = frames[:8]
    video = _write_video(tmp_path / "in.mp4", frames)
    out, stats = tmp_path / "out.mp4", tmp_path / "stats.json"
    code = main(["stream", "edgesam-demo", str(video), "--point", "28,40", "-o", str(out),
                 "--every-frame", "--no-mask-input", "--json-out", str(stats)])  # fmt: skip
    assert code == 0
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 8
    cap.release()
    import json

    summary = json.loads(stats.read_text())
    assert summary["frames_decoded"] == 8 and summary["latency"]["n"] == 8
    assert main(["stream", "edgesam-demo", str(video), "-o", str(out)]) == 2


def test_long_stream_keeps_memory_flat() -> None:
    """1,200 frames through the encoder thread, tracker and stats: resident memory stays flat."""
    import gc

    from edgesam.bench.timing import current_rss_mb

    frames, _ = disc_video(20)
    rss: dict[int, float | None] = {}
    with StreamSegmenter(ColourBackend(), stats_window=100) as stream:
        stream.start((frames[i % 20] for i in range(1200)), drop=False)
        tracker = Tracker(point=(28, 40))
        for encoded in stream:
            if encoded.index % 20 == 0:
                tracker.reset(point=(28, 40))
            tracker.update(encoded)
            if encoded.index in (200, 1199):
                gc.collect()
                rss[encoded.index] = current_rss_mb()
    summary = stream.stats.summary()
    assert summary.frames_decoded == 1200 and summary.latency.n == 100
    if rss.get(200) is None or rss.get(1199) is None:
        pytest.skip("resident memory is not readable on this OS")
    assert rss[1199] - rss[200] < 20.0, rss
