"""Real ROS 1 / ROS 2 (sqlite3, MCAP) bags and plain MCAP files, written with rosbags and mcap for the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from edgesam.robots.msgdefs import VISION_MSGS

KINDS = ("ros1", "ros2-sqlite3", "ros2-mcap", "mcap")
CAMERA = "/camera/image_raw"
DETECTIONS = "/detections"
T0 = 1_700_000_000 * 1_000_000_000  # a plausible wall-clock stamp (ns)
PERIOD = 100_000_000  # 10 Hz


def typestore(kind: str) -> Any:
    """The typestore of ``kind`` (ROS 1 Noetic or ROS 2 Humble) with vision_msgs added."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS1_NOETIC if kind == "ros1" else Stores.ROS2_HUMBLE)
    types: dict[str, Any] = {}
    for name, text in VISION_MSGS.items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store


def scene(index: int, h: int = 96, w: int = 128) -> np.ndarray:
    """RGB uint8 [h, w, 3]: a bright disc moving right and a dark box on a gradient."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 90)], axis=-1).astype(np.uint8)
    cx = 30 + 6 * index
    img[(yy - 48) ** 2 + (xx - cx) ** 2 < 16**2] = (240, 230, 40)
    img[20:75, 80:118] = (20, 30, 160)
    return img


def disc_box(index: int) -> tuple[float, float, float, float]:
    cx = 30 + 6 * index
    return (cx - 18.0, 30.0, cx + 18.0, 66.0)


RECT_BOX = (78.0, 18.0, 120.0, 77.0)


def header(store: Any, stamp_ns: int, frame_id: str = "camera") -> Any:
    t = store.types
    stamp = t["builtin_interfaces/msg/Time"](sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)
    if "seq" in t["std_msgs/msg/Header"].__dataclass_fields__:
        return t["std_msgs/msg/Header"](seq=0, stamp=stamp, frame_id=frame_id)
    return t["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)


def mosaic_rggb(rgb: np.ndarray) -> np.ndarray:
    """An RGGB Bayer mosaic ``uint8 [H, W]`` of an RGB image."""
    out = np.empty(rgb.shape[:2], np.uint8)
    out[0::2, 0::2] = rgb[0::2, 0::2, 0]
    out[0::2, 1::2] = rgb[0::2, 1::2, 1]
    out[1::2, 0::2] = rgb[1::2, 0::2, 1]
    out[1::2, 1::2] = rgb[1::2, 1::2, 2]
    return out


def image_msg(store: Any, rgb: np.ndarray, encoding: str, stamp_ns: int, *, pad: int = 0) -> Any:
    """A sensor_msgs/Image of ``rgb`` in ``encoding`` (rows padded by ``pad`` bytes)."""
    if encoding == "rgb8":
        px = rgb
    elif encoding == "bgr8":
        px = rgb[..., ::-1]
    elif encoding == "mono8":
        px = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    elif encoding in ("mono16", "16UC1"):
        px = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype("<u2") * 257
    elif encoding == "bayer_rggb8":
        px = mosaic_rggb(rgb)
    elif encoding == "32FC1":
        px = rgb[..., 0].astype("<f4")
    else:
        raise ValueError(encoding)
    h, w = rgb.shape[:2]
    rows = np.ascontiguousarray(px).view(np.uint8).reshape(h, -1)
    rows = np.pad(rows, ((0, 0), (0, pad)))
    return store.types["sensor_msgs/msg/Image"](
        header=header(store, stamp_ns), height=h, width=w, encoding=encoding, is_bigendian=0,
        step=rows.shape[1], data=rows.reshape(-1).copy(),
    )


def compressed_msg(store: Any, rgb: np.ndarray, stamp_ns: int, fmt: str = "png") -> Any:
    ok, buf = cv2.imencode(f".{fmt}", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return store.types["sensor_msgs/msg/CompressedImage"](header=header(store, stamp_ns), format=fmt,
                                                           data=buf.reshape(-1).copy())


def detection_msg(store: Any, stamp_ns: int, boxes: Sequence[Sequence[float]], ids: Sequence[str]) -> Any:
    t = store.types
    dets = []
    for (x0, y0, x1, y1), det_id in zip(boxes, ids):
        bbox = t["vision_msgs/msg/BoundingBox2D"](
            center=t["vision_msgs/msg/Pose2D"](position=t["vision_msgs/msg/Point2D"](x=(x0 + x1) / 2, y=(y0 + y1) / 2),
                                               theta=0.0),
            size_x=x1 - x0, size_y=y1 - y0,
        )
        pose = t["geometry_msgs/msg/PoseWithCovariance"](
            pose=t["geometry_msgs/msg/Pose"](position=t["geometry_msgs/msg/Point"](x=0.0, y=0.0, z=0.0),
                                             orientation=t["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0)),
            covariance=np.zeros(36),
        )
        hyp = t["vision_msgs/msg/ObjectHypothesisWithPose"](
            hypothesis=t["vision_msgs/msg/ObjectHypothesis"](class_id="thing", score=0.9), pose=pose)
        dets.append(t["vision_msgs/msg/Detection2D"](header=header(store, stamp_ns), results=[hyp], bbox=bbox,
                                                     id=det_id))
    return t["vision_msgs/msg/Detection2DArray"](header=header(store, stamp_ns), detections=dets)


def write_bag(path: Path, kind: str, messages: Sequence[tuple[str, str, int, Any]], store: Any) -> Path:
    """Write ``(topic, msgtype, log_time_ns, msg)`` to a bag of ``kind``; returns the bag's path."""
    topics: dict[str, str] = {}
    for topic, msgtype, _, _ in messages:
        topics.setdefault(topic, msgtype)
    if kind == "ros1":
        from rosbags.rosbag1 import Writer as Writer1

        with Writer1(path) as w:
            conns = {t: w.add_connection(t, m, typestore=store) for t, m in topics.items()}
            for topic, msgtype, ts, msg in messages:
                w.write(conns[topic], ts, store.serialize_ros1(msg, msgtype))
    elif kind in ("ros2-sqlite3", "ros2-mcap"):
        from rosbags.rosbag2 import StoragePlugin, Writer

        plugin = StoragePlugin.SQLITE3 if kind == "ros2-sqlite3" else StoragePlugin.MCAP
        with Writer(path, version=9, storage_plugin=plugin) as w:
            conns = {t: w.add_connection(t, m, typestore=store) for t, m in topics.items()}
            for topic, msgtype, ts, msg in messages:
                w.write(conns[topic], ts, store.serialize_cdr(msg, msgtype))
    elif kind == "mcap":
        from mcap.writer import Writer as McapWriter

        with open(path, "wb") as f:
            w = McapWriter(f)
            w.start(profile="ros2", library="tests")
            chans = {}
            for t, m in topics.items():
                schema = w.register_schema(m, "ros2msg", store.generate_msgdef(m, ros_version=2)[0].encode())
                chans[t] = w.register_channel(t, "cdr", schema)
            for topic, msgtype, ts, msg in messages:
                w.add_message(chans[topic], log_time=ts, data=store.serialize_cdr(msg, msgtype), publish_time=ts)
            w.finish()
    else:
        raise ValueError(kind)
    return path


def bag_name(tmp: Path, kind: str, stem: str = "in") -> Path:
    return tmp / {"ros1": f"{stem}.bag", "mcap": f"{stem}.mcap"}.get(kind, f"{stem}_{kind}")


def camera_bag(tmp: Path, kind: str, *, frames: int = 3, encoding: str = "rgb8", compressed: bool = False,
               detections: bool = True, stem: str = "in") -> Path:
    """A bag with ``frames`` camera frames and (optionally) detections: the disc and the box on
    every frame but frame 1 (missing), plus one detection message between frames (extra stamp)."""
    store = typestore(kind)
    msgs: list[tuple[str, str, int, Any]] = []
    for i in range(frames):
        stamp = T0 + i * PERIOD
        rgb = scene(i)
        if compressed:
            msgs.append((CAMERA, "sensor_msgs/msg/CompressedImage", stamp + 1000, compressed_msg(store, rgb, stamp)))
        else:
            msgs.append((CAMERA, "sensor_msgs/msg/Image", stamp + 1000, image_msg(store, rgb, encoding, stamp)))
        if detections and i != 1:
            det_stamp = stamp + 2_000_000  # the detector's stamp lags by 2 ms
            msgs.append((DETECTIONS, "vision_msgs/msg/Detection2DArray", stamp + 30_000_000,
                         detection_msg(store, det_stamp, [disc_box(i), RECT_BOX], [f"disc{i}", f"rect{i}"])))
    if detections:  # a detection with no frame near it
        msgs.append((DETECTIONS, "vision_msgs/msg/Detection2DArray", T0 + PERIOD // 2 + 30_000_000,
                     detection_msg(store, T0 + PERIOD // 2, [RECT_BOX], ["extra"])))
    msgs.sort(key=lambda m: m[2])
    return write_bag(bag_name(tmp, kind, stem), kind, msgs, store)
