"""A live view for Foxglove: frames with the mask overlay and boxes over its WebSocket protocol.

Served with ``foxglove-sdk`` on loopback. Topics: ``/edgesam/overlay``
(``foxglove.CompressedImage``, JPEG) and ``/edgesam/annotations``
(``foxglove.ImageAnnotations``: one box outline per object). Each viewer has a backlog of
``backlog`` messages: when it is slower than the stream the oldest are dropped, never queued
up; nothing is encoded while no viewer is subscribed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["LiveView"]


class LiveView:
    """Serve frames to Foxglove (``ws://HOST:PORT``).

    Args:
        port: TCP port (0 picks a free one; see :attr:`port`).
        host: address to bind, loopback by default.
        topic_prefix: prefix of the two topics.
        backlog: messages buffered per viewer before the oldest are dropped.
        jpeg_quality: of the overlay image (1-100).
    """

    def __init__(self, *, port: int = 8765, host: str = "127.0.0.1", topic_prefix: str = "/edgesam",
                 backlog: int = 4, jpeg_quality: int = 80) -> None:  # fmt: skip
        import foxglove
        from foxglove.channels import CompressedImageChannel, ImageAnnotationsChannel

        if not 0 <= int(port) < 65536:
            raise ValueError(f"port must be in 0..65535, got {port}")
        self._context = foxglove.Context()
        self._server = foxglove.start_server(name="edgesam", host=host, port=int(port), context=self._context,
                                             message_backlog_size=int(backlog))  # fmt: skip
        self._image = CompressedImageChannel(f"{topic_prefix}/overlay", context=self._context)
        self._boxes = ImageAnnotationsChannel(f"{topic_prefix}/annotations", context=self._context)
        self.jpeg_quality = int(jpeg_quality)
        self.published = 0

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._server.port)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def has_viewers(self) -> bool:
        return bool(self._image.has_sinks() or self._boxes.has_sinks())

    def publish(self, image: np.ndarray, instance_mask: np.ndarray, boxes: np.ndarray, *, stamp_ns: int,
                frame_id: str = "") -> bool:  # fmt: skip
        """Send one frame (skipped, returning False, while nobody watches).

        Args:
            image: RGB ``uint8 [H, W, 3]``.
            instance_mask: ``uint8 [H, W]`` instance ids (0 = background).
            boxes: XYXY ``[N, 4]`` to outline.
            stamp_ns: the frame's header stamp; frame_id: its header frame.
        """
        import cv2
        from foxglove.messages import (
            Color, CompressedImage, ImageAnnotations, Point2, PointsAnnotation, PointsAnnotationType, Timestamp,
        )  # fmt: skip

        from edgesam.viz import overlay

        if not self.has_viewers():
            return False
        ids = [int(i) for i in np.unique(instance_mask) if i]
        masks = np.stack([instance_mask == i for i in ids]) if ids else np.zeros((0, *instance_mask.shape), bool)
        shown = overlay(image, masks, boxes=np.asarray(boxes, np.float32).reshape(-1, 4))
        ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(shown, cv2.COLOR_RGB2BGR),
                                [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])  # fmt: skip
        if not ok:
            raise RuntimeError("OpenCV could not JPEG-encode the overlay")
        stamp = Timestamp(int(stamp_ns) // 1_000_000_000, int(stamp_ns) % 1_000_000_000)
        self._image.log(CompressedImage(timestamp=stamp, frame_id=frame_id, data=jpeg.tobytes(), format="jpeg"))
        outline = Color(r=1.0, g=0.8, b=0.0, a=1.0)
        annotations = [
            PointsAnnotation(timestamp=stamp, type=PointsAnnotationType.LineLoop, thickness=2.0, outline_color=outline,
                             points=[Point2(x=float(x), y=float(y)) for x, y in
                                     ((b[0], b[1]), (b[2], b[1]), (b[2], b[3]), (b[0], b[3]))])
            for b in np.asarray(boxes, np.float64).reshape(-1, 4)
        ]  # fmt: skip
        self._boxes.log(ImageAnnotations(timestamp=stamp, points=annotations))
        self.published += 1
        return True

    def close(self) -> None:
        """Stop the server (viewers are disconnected)."""
        self._server.stop()

    def __enter__(self) -> LiveView:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
