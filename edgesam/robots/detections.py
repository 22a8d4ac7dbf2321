"""``vision_msgs/Detection2DArray`` in and out: boxes as prompts, masks' boxes as results.

Reading accepts the ``vision_msgs`` layouts in use (4.x on ROS 2 Humble and later:
``bbox.center.position.x``, ``results[].hypothesis``, ``id``; ROS 1 and older ROS 2:
``bbox.center.x``, ``results[].id``/``score``). Detections are matched to frames by header
stamp: the nearest detection message within a tolerance, or none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

__all__ = ["Detections", "StampMatcher", "build_detection_array", "match_stamps", "parse_detection_array"]


@dataclass(frozen=True)
class Detections:
    """The boxes of one detection message.

    Attributes:
        stamp_ns: the message's header stamp (nanoseconds).
        boxes: XYXY ``float32 [N, 4]`` in image pixels.
        ids: the detections' ``id`` strings (``""`` when the layout has none).
        class_ids: the best hypothesis' class of each detection (``""`` when none).
        scores: the best hypothesis' score ``float32 [N]`` (0 when none).
    """

    stamp_ns: int
    boxes: np.ndarray
    ids: list[str] = field(default_factory=list)
    class_ids: list[str] = field(default_factory=list)
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))


def _center(bbox: Any) -> tuple[float, float]:
    center = bbox.center
    pos = getattr(center, "position", center)  # 4.x: Pose2D(position: Point2D); older: geometry Pose2D
    return float(pos.x), float(pos.y)


def _hypothesis(det: Any) -> tuple[str, float]:
    results = list(getattr(det, "results", []) or [])
    if not results:
        return "", 0.0
    best = None
    for res in results:
        hyp = getattr(res, "hypothesis", res)
        cls, score = str(getattr(hyp, "class_id", getattr(hyp, "id", ""))), float(getattr(hyp, "score", 0.0))
        if best is None or score > best[1]:
            best = (cls, score)
    assert best is not None
    return best


def parse_detection_array(msg: Any, stamp_ns: int) -> Detections:
    """A deserialized ``Detection2DArray`` -> :class:`Detections` (boxes from centre + size)."""
    boxes, ids, classes, scores = [], [], [], []
    for det in msg.detections:
        cx, cy = _center(det.bbox)
        w, h = float(det.bbox.size_x), float(det.bbox.size_y)
        boxes.append((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
        ids.append(str(getattr(det, "id", "") or getattr(det, "tracking_id", "")))  # ROS 1: tracking_id
        cls, score = _hypothesis(det)
        classes.append(cls)
        scores.append(score)
    return Detections(
        stamp_ns=stamp_ns,
        boxes=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        ids=ids,
        class_ids=classes,
        scores=np.asarray(scores, dtype=np.float32),
    )


def match_stamps(frame_stamps: Sequence[int], detection_stamps: Sequence[int], tolerance_ns: int) -> np.ndarray:
    """For each frame stamp, the index of the nearest detection stamp within ``tolerance_ns``.

    Args:
        frame_stamps: ``[F]`` nanoseconds.
        detection_stamps: ``[D]`` nanoseconds, any order.
        tolerance_ns: largest accepted ``|frame - detection|`` (>= 0).

    Returns:
        ``int64 [F]``: an index into ``detection_stamps``, or -1 where none is close enough.
    """
    if tolerance_ns < 0:
        raise ValueError(f"the stamp tolerance must be >= 0, got {tolerance_ns} ns")
    frames = np.asarray(frame_stamps, dtype=np.int64).reshape(-1)
    dets = np.asarray(detection_stamps, dtype=np.int64).reshape(-1)
    out = np.full(frames.shape, -1, dtype=np.int64)
    if dets.size == 0 or frames.size == 0:
        return out
    order = np.argsort(dets, kind="stable")
    sorted_dets = dets[order]
    pos = np.searchsorted(sorted_dets, frames)
    left = np.clip(pos - 1, 0, dets.size - 1)
    right = np.clip(pos, 0, dets.size - 1)
    d_left = np.abs(frames - sorted_dets[left])
    d_right = np.abs(sorted_dets[right] - frames)
    best = np.where(d_right < d_left, right, left)
    dist = np.minimum(d_left, d_right)
    ok = dist <= tolerance_ns
    out[ok] = order[best[ok]]
    return out


class StampMatcher:
    """:func:`match_stamps` for one frame at a time, the detection stamps sorted once.

    Args:
        detection_stamps: ``[D]`` nanoseconds, any order.
        tolerance_ns: largest accepted ``|frame - detection|`` (>= 0).
    """

    def __init__(self, detection_stamps: Sequence[int], tolerance_ns: int) -> None:
        if tolerance_ns < 0:
            raise ValueError(f"the stamp tolerance must be >= 0, got {tolerance_ns} ns")
        dets = np.asarray(detection_stamps, dtype=np.int64).reshape(-1)
        self._order = np.argsort(dets, kind="stable")
        self._sorted = dets[self._order]
        self.tolerance_ns = int(tolerance_ns)

    def __call__(self, frame_stamp: int) -> int:
        """Index of the nearest detection within the tolerance, or -1."""
        n = self._sorted.size
        if n == 0:
            return -1
        pos = int(np.searchsorted(self._sorted, frame_stamp))
        best, dist = -1, self.tolerance_ns + 1
        for k in (pos - 1, pos):  # the neighbours; the earlier one wins a tie
            if 0 <= k < n and abs(int(self._sorted[k]) - int(frame_stamp)) < dist:
                best, dist = k, abs(int(self._sorted[k]) - int(frame_stamp))
        return int(self._order[best]) if best >= 0 else -1


def build_detection_array(
    store: Any, header: Any, boxes: np.ndarray, scores: np.ndarray, ids: Sequence[str], class_ids: Sequence[str]
) -> Any:
    """An output ``vision_msgs/msg/Detection2DArray`` with the frame's ``header``.

    Args:
        store: the output typestore (:func:`edgesam.robots.msgdefs.output_typestore`).
        header: the input frame's ``std_msgs/Header`` (stamp, frame_id).
        boxes: XYXY ``[N, 4]`` (the masks' boxes).
        scores: ``[N]`` the masks' predicted IoU.
        ids: ``[N]`` the source detections' ids; class_ids: ``[N]`` their classes.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not len(boxes) == len(scores) == len(ids) == len(class_ids):
        raise ValueError(f"{len(boxes)} boxes, {len(scores)} scores, {len(ids)} ids and {len(class_ids)} classes: "
                         "give one of each per detection")  # fmt: skip
    t = store.types
    hdr = t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=int(header.stamp.sec),
                                   nanosec=int(getattr(header.stamp, "nanosec", 0))),
                                   frame_id=str(header.frame_id))  # fmt: skip
    zero_pose = t["geometry_msgs/msg/PoseWithCovariance"](
        pose=t["geometry_msgs/msg/Pose"](
            position=t["geometry_msgs/msg/Point"](x=0.0, y=0.0, z=0.0),
            orientation=t["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0),
        ),
        covariance=np.zeros(36, dtype=np.float64),
    )
    dets = []
    for box, score, det_id, cls in zip(boxes, scores, ids, class_ids):
        x0, y0, x1, y1 = (float(v) for v in box)
        bbox = t["vision_msgs/msg/BoundingBox2D"](
            center=t["vision_msgs/msg/Pose2D"](
                position=t["vision_msgs/msg/Point2D"](x=(x0 + x1) / 2, y=(y0 + y1) / 2), theta=0.0
            ),
            size_x=x1 - x0,
            size_y=y1 - y0,
        )
        hyp = t["vision_msgs/msg/ObjectHypothesisWithPose"](
            hypothesis=t["vision_msgs/msg/ObjectHypothesis"](class_id=str(cls), score=float(score)), pose=zero_pose
        )
        dets.append(t["vision_msgs/msg/Detection2D"](header=hdr, results=[hyp], bbox=bbox, id=str(det_id)))
    return t["vision_msgs/msg/Detection2DArray"](header=hdr, detections=dets)
