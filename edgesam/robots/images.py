"""``sensor_msgs/Image`` and ``sensor_msgs/CompressedImage`` -> RGB ``uint8 [H, W, 3]``.

Colour, mono, Bayer (demosaiced) and 16-bit colour/mono encodings (scaled to 8 bits by
dropping the low byte) are converted; depth and float encodings are refused with a message
that names them, since a segmentation model expects a camera image.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["SUPPORTED_ENCODINGS", "decode_compressed", "decode_image", "decode_message"]

# ROS encoding -> (channels, bytes per channel)
_PLAIN = {
    "rgb8": (3, 1), "bgr8": (3, 1), "rgba8": (4, 1), "bgra8": (4, 1), "mono8": (1, 1), "8uc1": (1, 1),
    "8uc3": (3, 1), "rgb16": (3, 2), "bgr16": (3, 2), "rgba16": (4, 2), "bgra16": (4, 2), "mono16": (1, 2),
}  # fmt: skip
# ROS Bayer pattern (top-left 2x2, row-major) -> OpenCV's code (OpenCV names the pattern by
# the second row's second and third pixels)
_BAYER = {"rggb": "BayerBG", "bggr": "BayerRG", "gbrg": "BayerGR", "grbg": "BayerGB"}
_YUV = {"uyvy": "UYVY", "yuv422": "UYVY", "yuyv": "YUYV", "yuv422_yuy2": "YUYV"}
_REFUSED = ("16uc1", "16sc1", "32fc1", "32fc3", "64fc1", "32sc1")

SUPPORTED_ENCODINGS: tuple[str, ...] = (
    tuple(_PLAIN) + tuple(f"bayer_{p}{b}" for p in _BAYER for b in ("8", "16")) + tuple(_YUV)
)


def _rows(data: Any, height: int, width: int, step: int, row_bytes: int) -> np.ndarray:
    buf = np.frombuffer(memoryview(data), dtype=np.uint8)
    if step < row_bytes:
        raise ValueError(f"image step {step} is smaller than a row ({width} px = {row_bytes} bytes)")
    if buf.size < step * (height - 1) + row_bytes:
        raise ValueError(f"image data has {buf.size} bytes, {height} rows of step {step} need {step * height}")
    if buf.size < step * height:  # last row unpadded
        buf = np.concatenate([buf, np.zeros(step * height - buf.size, np.uint8)])
    return buf[: step * height].reshape(height, step)[:, :row_bytes]


def _to8(rows: np.ndarray, bigendian: bool) -> np.ndarray:
    """Two-byte samples (``[H, 2*N]`` bytes) -> their high byte ``[H, N]``."""
    return np.ascontiguousarray(rows[:, 0::2] if bigendian else rows[:, 1::2])


def decode_image(msg: Any) -> np.ndarray:
    """A ``sensor_msgs/Image`` message -> RGB ``uint8 [H, W, 3]``.

    Raises:
        ValueError: unsupported encoding (the message names the supported ones), or data
            that does not fit the declared size.
    """
    import cv2

    enc = str(msg.encoding).strip().lower()
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height <= 0 or width <= 0:
        raise ValueError(f"empty image ({width}x{height})")
    bigendian = bool(msg.is_bigendian)
    if enc in _PLAIN:
        channels, depth = _PLAIN[enc]
        rows = _rows(msg.data, height, width, step, width * channels * depth)
        px = (_to8(rows, bigendian) if depth == 2 else rows).reshape(height, width, channels)
        if channels == 1:
            return cv2.cvtColor(px, cv2.COLOR_GRAY2RGB)
        if enc.startswith("bgr") or enc == "8uc3":  # OpenCV's 8UC3 images are BGR
            return cv2.cvtColor(px[..., :3], cv2.COLOR_BGR2RGB)
        return np.ascontiguousarray(px[..., :3])
    if enc.startswith("bayer_") and enc[6:10] in _BAYER and enc[10:] in ("8", "16"):
        depth = 2 if enc.endswith("16") else 1
        rows = _rows(msg.data, height, width, step, width * depth)
        raw = _to8(rows, bigendian) if depth == 2 else np.ascontiguousarray(rows)
        return cv2.cvtColor(raw, getattr(cv2, f"COLOR_{_BAYER[enc[6:10]]}2RGB"))
    if enc in _YUV:
        rows = np.ascontiguousarray(_rows(msg.data, height, width, step, width * 2)).reshape(height, width, 2)
        return cv2.cvtColor(rows, getattr(cv2, f"COLOR_YUV2RGB_{_YUV[enc]}"))
    if enc in _REFUSED:
        raise ValueError(
            f"image encoding {msg.encoding!r} is a depth/float image, not a camera picture; "
            "give the colour or mono camera topic"
        )
    raise ValueError(f"unsupported image encoding {msg.encoding!r}; supported: {', '.join(SUPPORTED_ENCODINGS)}")


def decode_compressed(msg: Any) -> np.ndarray:
    """A ``sensor_msgs/CompressedImage`` (JPEG, PNG, ...) -> RGB ``uint8 [H, W, 3]``.

    Raises:
        ValueError: compressed depth images, or data OpenCV cannot decode.
    """
    import cv2

    fmt = str(msg.format)
    if "compresseddepth" in fmt.lower().replace(" ", ""):
        raise ValueError(f"compressed image format {fmt!r} is a depth image; give a colour or mono camera topic")
    buf = np.frombuffer(memoryview(msg.data), dtype=np.uint8)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if bgr is None:
        raise ValueError(f"cannot decode compressed image (format {fmt!r}, {buf.size} bytes)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_message(msg: Any, msgtype: str) -> np.ndarray:
    """Decode an image message of ``msgtype`` (``sensor_msgs/msg/Image`` or ``CompressedImage``)."""
    if msgtype.endswith("CompressedImage"):
        return decode_compressed(msg)
    return decode_image(msg)
