"""Reading camera frames and detections from ROS 1 bags, ROS 2 bags (sqlite3, MCAP) and MCAP files.

All formats go through ``rosbags``' ``AnyReader`` with the message definitions stored in the
bag itself, so no ROS installation is needed. Errors from a corrupt or truncated bag surface
as a ``ValueError`` that names the bag.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edgesam.robots.images import decode_message
from edgesam.robots.msgdefs import IMAGE_TYPES, normalize_type

__all__ = ["BagFrame", "BagReader", "is_bag", "stamp_ns"]

BAG_SUFFIXES = (".bag", ".mcap", ".db3")


def is_bag(path: str | os.PathLike[str]) -> bool:
    """True for a ``.bag``/``.mcap``/``.db3`` path or a ROS 2 bag folder (``metadata.yaml``)."""
    p = Path(path)
    return p.suffix.lower() in BAG_SUFFIXES or (p.is_dir() and (p / "metadata.yaml").is_file())


def stamp_ns(stamp: Any) -> int:
    """A ``builtin_interfaces/Time`` (``sec``, ``nanosec``) -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(getattr(stamp, "nanosec", getattr(stamp, "nsec", 0)))


@dataclass(frozen=True)
class BagFrame:
    """One camera frame of a bag.

    Attributes:
        index: position among the topic's messages (0-based).
        image: RGB ``uint8 [H, W, 3]``.
        header: the message's ``std_msgs/Header`` (stamp and frame_id), reused on the outputs.
        stamp_ns: the header stamp in nanoseconds (the log time when the header stamp is 0).
        log_time_ns: the time the message was recorded in the bag.
        decode_ms: time spent deserializing and decoding the message.
    """

    index: int
    image: np.ndarray
    header: Any
    stamp_ns: int
    log_time_ns: int
    decode_ms: float

    @property
    def frame_id(self) -> str:
        return str(self.header.frame_id)


class BagReader:
    """An open bag. Use as a context manager::

        with BagReader("run.mcap") as bag:
            for frame in bag.frames(bag.image_topic(None)):
                ...

    Args:
        path: a ROS 1 ``.bag`` file, a ROS 2 bag folder, or an ``.mcap`` / ``.db3`` file.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the bag cannot be read (corrupt, truncated, not a bag).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"bag not found: {self.path}")
        self._reader: Any = None

    def _fail(self, exc: BaseException) -> ValueError:
        return ValueError(f"cannot read bag {self.path}: {type(exc).__name__}: {exc}".rstrip(": "))

    def __enter__(self) -> BagReader:
        try:
            from rosbags.highlevel import AnyReader
        except ImportError as exc:
            raise ImportError('reading bags needs the ros extra: pip install "edgesam[ros]"') from exc
        try:
            reader = AnyReader([self.path])
            reader.open()
        except FileNotFoundError as exc:
            raise ValueError(f"cannot read bag {self.path}: {exc} (not a bag?)") from exc
        except Exception as exc:  # rosbags, sqlite3, mcap and struct errors alike
            raise self._fail(exc) from exc
        self._reader = reader
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._reader is not None:
            try:
                self._reader.close()
            finally:
                self._reader = None

    @property
    def reader(self) -> Any:
        """The open ``rosbags.highlevel.AnyReader``."""
        if self._reader is None:
            raise RuntimeError("the bag is not open: use `with BagReader(path) as bag:`")
        return self._reader

    @property
    def is_ros2(self) -> bool:
        return bool(self.reader.is2)

    @property
    def topics(self) -> dict[str, str]:
        """Topic -> message type (``pkg/msg/Name``)."""
        return {c.topic: normalize_type(c.msgtype) for c in self.reader.connections}

    @property
    def image_topics(self) -> list[str]:
        """Topics carrying ``sensor_msgs/Image`` or ``sensor_msgs/CompressedImage``, sorted."""
        return sorted(t for t, m in self.topics.items() if m in IMAGE_TYPES)

    def connections(self, topic: str) -> list[Any]:
        return [c for c in self.reader.connections if c.topic == topic]

    def message_count(self, topic: str) -> int:
        return sum(int(c.msgcount) for c in self.connections(topic))

    def image_topic(self, topic: str | None) -> str:
        """Check ``topic`` (or pick the only image topic when None) and return it.

        Raises:
            ValueError: unknown topic or not an image topic (the image topics are listed),
                no image topic, several image topics and no choice, or an empty topic.
        """
        images = self.image_topics
        listing = ", ".join(images) if images else "none"
        if topic is None:
            if len(images) != 1:
                raise ValueError(f"give --topic: {self.path} has {len(images)} image topics ({listing})")
            topic = images[0]
        elif topic not in self.topics:
            raise ValueError(f"topic {topic} is not in {self.path}; image topics: {listing}")
        elif topic not in images:
            raise ValueError(f"topic {topic} is {self.topics[topic]}, not an image topic; image topics: {listing}")
        if self.message_count(topic) == 0:
            raise ValueError(f"topic {topic} has no messages in {self.path}")
        return topic

    def raw_messages(self, topics: list[str]) -> Iterator[tuple[Any, int, bytes]]:
        """``(connection, log_time_ns, serialized bytes)`` of ``topics`` in log-time order."""
        conns = [c for t in topics for c in self.connections(t)]
        it = self.reader.messages(connections=conns)
        while True:
            try:
                item = next(it)
            except StopIteration:
                return
            except Exception as exc:
                raise self._fail(exc) from exc
            yield item

    def deserialize(self, raw: bytes, msgtype: str) -> Any:
        try:
            return self.reader.deserialize(raw, msgtype)
        except Exception as exc:
            raise self._fail(exc) from exc

    def frames(self, topic: str, *, max_frames: int | None = None) -> Iterator[BagFrame]:
        """The image messages of ``topic`` as :class:`BagFrame` s, in recording order.

        ``decode_ms`` counts reading the message from the bag (decompressing its chunk
        included), deserializing it and decoding the image.
        """
        messages = self.raw_messages([topic])
        index = 0
        while max_frames is None or index < max_frames:
            start = time.perf_counter()
            item = next(messages, None)
            if item is None:
                return
            conn, log_time, raw = item
            msg = self.deserialize(raw, conn.msgtype)
            try:
                image = decode_message(msg, normalize_type(conn.msgtype))
            except ValueError as exc:
                raise ValueError(f"{topic} message {index}: {exc}") from exc
            decode_ms = (time.perf_counter() - start) * 1000.0
            stamp = stamp_ns(msg.header.stamp) or int(log_time)
            yield BagFrame(index, image, msg.header, stamp, int(log_time), decode_ms)
            index += 1
