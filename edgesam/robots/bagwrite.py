"""Writing result bags: an MCAP file (``out.mcap``) or a ROS 2 bag folder (MCAP or sqlite3 storage).

Messages are serialized as CDR with ROS 2 ``.msg`` schemas, so rviz2, Foxglove and
``ros2 bag play`` read them. Everything is written under a temporary name in the output's
folder and renamed into place when complete: an interrupted run leaves no half-written bag.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from edgesam.robots.msgdefs import msgdef, output_typestore

__all__ = ["BagWriter"]

_STORAGES = ("mcap", "sqlite3")


class BagWriter:
    """Write ROS 2 messages to ``path`` (a ``.mcap`` file, else a ROS 2 bag folder).

    Args:
        path: ``*.mcap`` -> a plain MCAP file (ros2msg schemas, CDR messages); any other name
            -> a ROS 2 bag folder. ``.bag`` (ROS 1) is refused.
        storage: storage of a bag folder, ``"mcap"`` (default) or ``"sqlite3"``.
        overwrite: replace an existing output (a folder only if it is a ROS 2 bag).

    Use as a context manager: the bag appears at ``path`` when the block ends without an
    exception; on an exception the temporary output is removed.
    """

    def __init__(self, path: str | os.PathLike[str], *, storage: str = "mcap", overwrite: bool = True) -> None:
        self.path = Path(path)
        if storage not in _STORAGES:
            raise ValueError(f"storage must be one of {_STORAGES}, got {storage!r}")
        if self.path.suffix.lower() == ".bag":
            raise ValueError(f"cannot write ROS 1 bag {self.path}: write a .mcap file or a ROS 2 bag folder")
        self.is_file = self.path.suffix.lower() == ".mcap"
        self.storage = storage
        if self.path.exists():
            if not overwrite:
                raise ValueError(f"output {self.path} exists")
            if not self.is_file and not (self.path / "metadata.yaml").is_file():
                raise ValueError(f"output {self.path} exists and is not a ROS 2 bag folder; give a new name")
        self.write_ms = 0.0
        self.counts: dict[str, int] = {}
        self._tmp: Path | None = None
        self._mcap: Any = None
        self._file: Any = None
        self._bag: Any = None
        self._channels: dict[str, Any] = {}
        self._schemas: dict[str, int] = {}

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> BagWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.parent / f".{self.path.name}.partial-{os.getpid()}"
        self._discard_tmp()
        if self.is_file:
            from mcap.writer import CompressionType, Writer

            self._file = open(self._tmp, "wb")  # noqa: SIM115 (closed in __exit__)
            self._mcap = Writer(self._file, compression=CompressionType.ZSTD)
            self._mcap.start(profile="ros2", library="edgesam")
        else:
            from rosbags.rosbag2 import StoragePlugin, Writer

            self._tmp.mkdir()
            plugin = StoragePlugin.MCAP if self.storage == "mcap" else StoragePlugin.SQLITE3
            self._bag = Writer(self._tmp / self.path.name, version=Writer.VERSION_LATEST, storage_plugin=plugin)
            self._bag.open()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self._abort()
            return
        start = time.perf_counter()
        try:
            self._finish()
            self.write_ms += (time.perf_counter() - start) * 1000.0
        except BaseException:
            self._abort()
            raise

    def _discard_tmp(self) -> None:
        if self._tmp is not None and self._tmp.exists():
            shutil.rmtree(self._tmp) if self._tmp.is_dir() else self._tmp.unlink()

    def _abort(self) -> None:
        try:
            if self._file is not None:
                self._file.close()
            if self._bag is not None:
                try:
                    self._bag.close()
                except Exception:
                    pass
        finally:
            self._file = self._mcap = self._bag = None
            self._discard_tmp()

    def _finish(self) -> None:
        assert self._tmp is not None
        if self._mcap is not None:
            self._mcap.finish()
            self._file.close()
            self._file = self._mcap = None
            os.replace(self._tmp, self.path)
            return
        self._bag.close()
        self._bag = None
        if self.path.exists():
            shutil.rmtree(self.path)
        os.replace(self._tmp / self.path.name, self.path)
        self._tmp.rmdir()

    # ------------------------------------------------------------------ topics and messages
    def add_topic(self, topic: str, msgtype: str, *, definition: str | None = None, rihs01: str | None = None) -> None:
        """Declare ``topic`` with ``msgtype`` (``pkg/msg/Name``).

        ``definition`` (ROS 2 ``.msg`` text with dependencies) and ``rihs01`` default to the
        output typestore's (``sensor_msgs``, ``std_msgs``, ``vision_msgs``, ...); give them to
        copy messages of other types verbatim.
        """
        if topic in self._channels:
            raise ValueError(f"topic {topic} was already added")
        text = definition if definition is not None else msgdef(msgtype)
        if self._mcap is not None:
            if msgtype not in self._schemas:
                self._schemas[msgtype] = self._mcap.register_schema(msgtype, "ros2msg", text.encode())
            self._channels[topic] = self._mcap.register_channel(topic, "cdr", self._schemas[msgtype])
        elif self._bag is not None:
            if definition is None:
                rihs01 = output_typestore().hash_rihs01(msgtype)
            elif not rihs01:
                raise ValueError(f"give the RIHS01 hash of {msgtype} with its definition")
            self._channels[topic] = self._bag.add_connection(topic, msgtype, msgdef=text, rihs01=rihs01)
        else:
            raise RuntimeError("the writer is not open: use `with BagWriter(path) as out:`")
        self.counts[topic] = 0

    def write(self, topic: str, log_time_ns: int, msg: Any) -> None:
        """Serialize ``msg`` (an output-typestore message) as CDR and write it."""
        start = time.perf_counter()
        data = output_typestore().serialize_cdr(msg, msg.__msgtype__)
        self._write(topic, log_time_ns, data)
        self.write_ms += (time.perf_counter() - start) * 1000.0

    def write_raw(self, topic: str, log_time_ns: int, data: bytes | memoryview) -> None:
        """Write already serialized CDR bytes."""
        start = time.perf_counter()
        self._write(topic, log_time_ns, data)
        self.write_ms += (time.perf_counter() - start) * 1000.0

    def _write(self, topic: str, log_time_ns: int, data: bytes | memoryview) -> None:
        channel = self._channels.get(topic)
        if channel is None:
            raise ValueError(f"topic {topic} was not added")
        if self._mcap is not None:
            self._mcap.add_message(channel, log_time=int(log_time_ns), data=bytes(data),
                                   publish_time=int(log_time_ns), sequence=self.counts[topic])  # fmt: skip
        else:
            self._bag.write(channel, int(log_time_ns), data)
        self.counts[topic] += 1
