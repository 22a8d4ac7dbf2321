"""Bag in, bag out: segment a camera topic with detector boxes (or a tracked click/box) as prompts.

For every frame of the image topic: encode it, decode all boxes of the matched detection
message in one ``predict_batch`` call (or update the :class:`~edgesam.stream.Tracker`), and
write the instance-id mask (``sensor_msgs/Image`` mono8, ids 1..N in detection order, later
detections drawn over earlier ones) on ``<topic>/edgesam/mask`` and the masks' boxes with
scores and the source detection ids (``vision_msgs/Detection2DArray``) on
``<topic>/edgesam/detections``, both with the frame's header and log time.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from edgesam.robots.bagread import BagFrame, BagReader, stamp_ns
from edgesam.robots.bagwrite import BagWriter
from edgesam.robots.detections import Detections, StampMatcher, build_detection_array, parse_detection_array
from edgesam.robots.msgdefs import DETECTION_ARRAY, IMAGE, normalize_type, output_typestore
from edgesam.robots.prefetch import Prefetcher

__all__ = ["BagRunStats", "FrameResult", "instance_mask", "read_detections", "segment_bag"]

MAX_INSTANCES = 255  # ids of a mono8 mask


@dataclass
class BagRunStats:
    """What a bag run did and where its time went (milliseconds, summed over frames).

    ``read_ms`` is the work of reading, deserializing and decoding messages, done in a
    read-ahead thread that overlaps the encoder; ``read_wait_ms`` is the part of it the
    pipeline waited for. ``write_ms`` is serializing and writing (in the main thread).
    """

    frames: int = 0
    frames_prompted: int = 0
    frames_without_detections: int = 0
    detections_unmatched: int = 0
    objects: int = 0
    boxes_dropped: int = 0
    read_ms: float = 0.0
    read_wait_ms: float = 0.0
    encode_ms: float = 0.0
    decode_ms: float = 0.0
    write_ms: float = 0.0
    total_ms: float = 0.0
    output: str | None = None
    topics: dict[str, int] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return 1000.0 * self.frames / self.total_ms if self.total_ms > 0 else 0.0

    def share(self, part: str) -> float:
        """``part``'s time (``read``, ``read_wait``, ``encode``, ``decode``, ``write``) over the total."""
        return float(getattr(self, f"{part}_ms")) / self.total_ms if self.total_ms > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        parts = ("read", "read_wait", "encode", "decode", "write")
        return {**asdict(self), "fps": self.fps, **{f"{p}_share": self.share(p) for p in parts}}

    def __str__(self) -> str:
        shares = (f"read {100 * self.share('read'):.0f}% (overlapped; waited {100 * self.share('read_wait'):.0f}%), "
                  + ", ".join(f"{p} {100 * self.share(p):.0f}%" for p in ("encode", "decode", "write")))
        return (f"{self.frames} frames ({self.frames_prompted} prompted, {self.objects} objects) "
                f"at {self.fps:.1f} FPS; time: {shares}")  # fmt: skip


@dataclass(frozen=True)
class FrameResult:
    """One segmented frame: ``instance_mask uint8 [H, W]``, XYXY ``boxes [N, 4]``, ``scores [N]``, ids."""

    frame: BagFrame
    instance_mask: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    ids: list[str]
    class_ids: list[str]


def instance_mask(masks: np.ndarray) -> np.ndarray:
    """``bool [N, H, W]`` (N <= 255) -> ``uint8 [H, W]``: pixel = 1 + index of the last mask covering it, else 0."""
    masks = np.asarray(masks, dtype=bool)
    if masks.shape[0] > MAX_INSTANCES:
        raise ValueError(f"at most {MAX_INSTANCES} masks fit a mono8 instance mask, got {masks.shape[0]}")
    out = np.zeros(masks.shape[1:], dtype=np.uint8)
    for i, mask in enumerate(masks):
        np.copyto(out, np.uint8(i + 1), where=mask)
    return out


def read_detections(bag: BagReader, topic: str) -> list[Detections]:
    """All messages of a ``vision_msgs/Detection2DArray`` topic, in recording order.

    Raises:
        ValueError: unknown topic (the detection topics are listed), wrong type, or no messages.
    """
    topics = bag.topics
    if topic not in topics:
        found = sorted(t for t, m in topics.items() if m == DETECTION_ARRAY)
        raise ValueError(f"prompt topic {topic} is not in {bag.path}; detection topics: {', '.join(found) or 'none'}")
    if topics[topic] != DETECTION_ARRAY:
        raise ValueError(f"prompt topic {topic} is {topics[topic]}, expected {DETECTION_ARRAY}")
    if bag.message_count(topic) == 0:
        raise ValueError(f"prompt topic {topic} has no messages in {bag.path}")
    out = []
    for conn, log_time, raw in bag.raw_messages([topic]):
        msg = bag.deserialize(raw, conn.msgtype)
        out.append(parse_detection_array(msg, stamp_ns(msg.header.stamp) or int(log_time)))
    return out


def _mask_boxes(masks: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    from edgesam.stream.tracker import mask_box

    boxes = np.asarray(fallback, np.float32).reshape(-1, 4).copy()
    for i, mask in enumerate(masks):
        box = mask_box(mask)
        if box is not None:
            boxes[i] = box
    return boxes


def _image_msg(store: Any, header: Any, mask: np.ndarray) -> Any:
    t = store.types
    hdr = t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=int(header.stamp.sec),
                                   nanosec=int(getattr(header.stamp, "nanosec", 0))),
                                   frame_id=str(header.frame_id))  # fmt: skip
    h, w = mask.shape
    return t[IMAGE](header=hdr, height=h, width=w, encoding="mono8", is_bigendian=0, step=w,
                    data=np.ascontiguousarray(mask).reshape(-1))  # fmt: skip


def _convert(msg: Any, store: Any) -> Any:
    """A message of another typestore (e.g. a ROS 1 bag's, with ``Header.seq``) -> ``store``'s type."""
    if not hasattr(msg, "__msgtype__"):
        return [_convert(m, store) for m in msg] if isinstance(msg, list) else msg
    cls = store.types.get(normalize_type(msg.__msgtype__))
    if cls is None:
        raise ValueError(f"no ROS 2 type {msg.__msgtype__}")
    try:
        return cls(**{name: _convert(getattr(msg, name), store) for name in cls.__dataclass_fields__
                      if name != "__msgtype__"})  # fmt: skip
    except (AttributeError, TypeError) as exc:
        raise ValueError(f"{msg.__msgtype__} has another layout than ROS 2's ({exc})") from exc


def _copy_topics(bag: BagReader, out: BagWriter, topics: Sequence[str]) -> None:
    """Copy ``topics`` into ``out``: verbatim when the bag's type is the output's (or unknown
    to it), else converted to the output's ROS 2 type (ROS 1 bags)."""
    src, dst = bag.reader.typestore, output_typestore()
    convert: dict[str, bool] = {}
    for topic in topics:
        msgtype = bag.connections(topic)[0].msgtype
        known = normalize_type(msgtype) in dst.types
        convert[topic] = known and (not bag.is_ros2 or src.hash_rihs01(msgtype) != dst.hash_rihs01(msgtype))
        if known:
            out.add_topic(topic, normalize_type(msgtype))
        else:
            definition, _ = src.generate_msgdef(msgtype, ros_version=2)
            out.add_topic(topic, msgtype, definition=definition, rihs01=src.hash_rihs01(msgtype))
    for conn, log_time, raw in bag.raw_messages(list(topics)):
        if convert[conn.topic]:
            msg = bag.deserialize(raw, conn.msgtype)
            try:
                if normalize_type(conn.msgtype) == DETECTION_ARRAY:  # ROS 1 / older layouts: rebuilt
                    d = parse_detection_array(msg, 0)
                    out.write(conn.topic, log_time, build_detection_array(dst, msg.header, d.boxes, d.scores, d.ids,
                                                                          d.class_ids))  # fmt: skip
                else:
                    out.write(conn.topic, log_time, _convert(msg, dst))
            except ValueError as exc:
                raise ValueError(f"cannot copy {conn.topic} into the output: {exc}") from exc
        elif not bag.is_ros2:
            out.write_raw(conn.topic, log_time, src.serialize_cdr(bag.deserialize(raw, conn.msgtype), conn.msgtype))
        else:
            out.write_raw(conn.topic, log_time, raw)


def _track(tracker: Any, predictor: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[str]]:
    """One tracker step -> ``masks [K, H, W]``, ``scores [K]``, prompt boxes ``[K, 4]``, ids, classes (K <= 1)."""
    res = tracker.update(predictor)
    if res.lost:
        return (np.zeros((0, *res.mask.shape), bool), np.zeros(0, np.float32), np.zeros((0, 4), np.float32), [], [])
    return res.mask[None], np.array([res.score], np.float32), res.box[None], ["track"], [""]


def _prompt_boxes(predictor: Any, dets: Detections | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str],
                                                                    list[str]]:  # fmt: skip
    """All boxes of ``dets`` decoded in one ``predict_batch`` call (single-mask output)."""
    prompts = dets.boxes[:MAX_INSTANCES] if dets is not None else np.zeros((0, 4), np.float32)
    batch, scores, _ = predictor.predict_batch(boxes=prompts, multimask_output=False)
    n = len(prompts)
    ids = [(dets.ids[i] or str(i)) for i in range(n)] if dets is not None else []
    classes = list(dets.class_ids[:n]) if dets is not None else []
    return batch[:, 0], np.asarray(scores[:, 0], np.float32), prompts, ids, classes


def segment_bag(
    predictor: Any,
    bag_path: str | Path,
    *,
    output: str | Path | None = None,
    topic: str | None = None,
    prompt_topic: str | None = None,
    point: Sequence[float] | None = None,
    box: Sequence[float] | None = None,
    tolerance_s: float = 0.01,
    copy_input: bool = False,
    storage: str = "mcap",
    live: Any = None,
    max_frames: int | None = None,
    use_mask_input: bool | str = "auto",
    on_frame: Callable[[FrameResult], None] | None = None,
) -> BagRunStats:
    """Segment the image topic of a bag and write the results to another bag.

    Args:
        predictor: a :class:`~edgesam.SamPredictor`.
        bag_path: ROS 1 ``.bag``, ROS 2 bag folder, ``.mcap`` or ``.db3``.
        output: ``*.mcap`` file or ROS 2 bag folder; None writes nothing (live view only).
        topic: image topic (None: the only one).
        prompt_topic: ``vision_msgs/Detection2DArray`` topic whose boxes prompt each frame.
        point, box: ``(x, y)`` / XYXY of one object in the first frame, tracked through the
            rest (instead of ``prompt_topic``).
        tolerance_s: largest stamp difference between a frame and its detections.
        copy_input: also copy the image (and prompt) topic into the output.
        storage: ``"mcap"`` or ``"sqlite3"`` for a bag-folder output.
        live: a :class:`~edgesam.robots.liveview.LiveView` to publish each frame to.
        max_frames: stop after this many frames.
        use_mask_input: feed the tracker's previous logits back: True, False or ``"auto"`` (checked
            once, as :class:`~edgesam.stream.Tracker` does).
        on_frame: called with each :class:`FrameResult`.

    Raises:
        ValueError: bad bag, topic, prompt topic, encoding or arguments (the message says which).
    """
    from edgesam.stream.tracker import Tracker

    if (prompt_topic is None) == (point is None and box is None):
        raise ValueError("give either a prompt topic (detections) or --point/--box to track, not both or neither")
    if not tolerance_s >= 0:
        raise ValueError(f"the stamp tolerance must be >= 0 s, got {tolerance_s}")
    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    if output is not None and Path(output).resolve() == Path(bag_path).resolve():
        raise ValueError(f"the output {output} is the input bag; give another name")
    stats = BagRunStats(output=None if output is None else str(output))
    store = output_typestore()
    start = time.perf_counter()
    with BagReader(bag_path) as bag:
        topic = bag.image_topic(topic)
        t_read = time.perf_counter()
        dets = read_detections(bag, prompt_topic) if prompt_topic else []
        stats.read_ms += (time.perf_counter() - t_read) * 1000.0
        matched_any = np.zeros(len(dets), dtype=bool)
        tracker = None if prompt_topic else Tracker(point=point, box=box, use_mask_input=use_mask_input)
        writer = BagWriter(output, storage=storage) if output is not None else None
        mask_topic, det_topic = f"{topic.rstrip('/')}/edgesam/mask", f"{topic.rstrip('/')}/edgesam/detections"
        with writer if writer is not None else _Null():
            if writer is not None:
                writer.add_topic(mask_topic, IMAGE)
                writer.add_topic(det_topic, DETECTION_ARRAY)
            match = StampMatcher([d.stamp_ns for d in dets], int(round(tolerance_s * 1e9)))
            frames = Prefetcher(bag.frames(topic, max_frames=max_frames), depth=2)
            try:
                for frame in frames:
                    stats.read_ms += frame.decode_ms
                    t0 = time.perf_counter()
                    predictor.set_image(frame.image)
                    t1 = time.perf_counter()
                    if tracker is not None:
                        masks, scores, prompts, ids, classes = _track(tracker, predictor)
                        stats.frames_prompted += 1
                    else:
                        j = match(frame.stamp_ns)
                        if j >= 0:
                            matched_any[j] = True
                            stats.frames_prompted += 1
                            stats.boxes_dropped += max(0, len(dets[j].boxes) - MAX_INSTANCES)
                        else:
                            stats.frames_without_detections += 1
                        masks, scores, prompts, ids, classes = _prompt_boxes(predictor, dets[j] if j >= 0 else None)
                    t2 = time.perf_counter()
                    stats.encode_ms += (t1 - t0) * 1000.0
                    stats.decode_ms += (t2 - t1) * 1000.0
                    ids_mask = instance_mask(masks)
                    boxes = _mask_boxes(masks, prompts)
                    stats.frames += 1
                    stats.objects += len(masks)
                    if writer is not None:
                        writer.write(mask_topic, frame.log_time_ns, _image_msg(store, frame.header, ids_mask))
                        dets_msg = build_detection_array(store, frame.header, boxes, scores, ids, classes)
                        writer.write(det_topic, frame.log_time_ns, dets_msg)
                    if live is not None:
                        live.publish(frame.image, ids_mask, prompts, stamp_ns=frame.stamp_ns, frame_id=frame.frame_id)
                    if on_frame is not None:
                        on_frame(FrameResult(frame, ids_mask, boxes, scores, ids, classes))
            finally:
                frames.close()
                stats.read_wait_ms += frames.wait_ms
            if writer is not None and copy_input:
                t3 = time.perf_counter()
                before = writer.write_ms
                _copy_topics(bag, writer, [topic] + ([prompt_topic] if prompt_topic else []))
                stats.read_ms += (time.perf_counter() - t3) * 1000.0 - (writer.write_ms - before)
        if writer is not None:
            stats.write_ms = writer.write_ms
            stats.topics = dict(writer.counts)
        stats.detections_unmatched = int((~matched_any).sum())
    stats.total_ms = (time.perf_counter() - start) * 1000.0
    return stats


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None
