"""Uploaded image files: type sniffing, header dimensions (before decoding) and decoding.

The pixel-count limit is checked on the header, so a small file that would decode into a huge
bitmap (a "decompression bomb") is refused before any memory is spent on it.
"""

from __future__ import annotations

import struct

import numpy as np

from edgesam.io import to_rgb8

__all__ = ["ImageError", "decode_image", "image_dimensions", "sniff_format"]


class ImageError(ValueError):
    """An upload that is not a usable image; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


def sniff_format(data: bytes) -> str | None:
    """``"png"``, ``"jpeg"``, ``"webp"`` from the file's magic bytes, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            pos += 1
            continue
        marker = data[pos + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            pos += 1 if marker == 0xFF else 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # start of frame
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return height, width
        pos += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return height, width
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return height & 0x3FFF, width & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1
    return None


def image_dimensions(data: bytes) -> tuple[str, int, int]:
    """``(format, height, width)`` read from the header of a PNG / JPEG / WebP file.

    Raises:
        ImageError: 415 for another file type, 422 for a header that cannot be read.
    """
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError("image: not a PNG, JPEG or WebP file", status=415)
    size: tuple[int, int] | None
    if fmt == "png":
        if len(data) >= 24 and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            size = (height, width)
        else:
            size = None
    elif fmt == "jpeg":
        size = _jpeg_size(data)
    else:
        size = _webp_size(data)
    if size is None or size[0] <= 0 or size[1] <= 0:
        raise ImageError(f"image: truncated or corrupt {fmt.upper()} header")
    return fmt, int(size[0]), int(size[1])


def decode_image(data: bytes, *, max_pixels: int) -> np.ndarray:
    """Decode an uploaded file into ``uint8 [H, W, 3]`` RGB.

    Raises:
        ImageError: unsupported type (415), too many pixels or a corrupt file (422).
    """
    import cv2

    fmt, height, width = image_dimensions(data)
    if height * width > max_pixels:
        raise ImageError(
            f"image: {width}x{height} = {height * width} pixels exceeds the server's limit of {max_pixels}"
        )
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageError(f"image: could not decode the {fmt.upper()} file (corrupt or truncated)")
    if image.shape[0] * image.shape[1] > max_pixels:  # header lied
        raise ImageError(f"image: decodes to {image.shape[1]}x{image.shape[0]}, over the pixel limit")
    return to_rgb8(image)
