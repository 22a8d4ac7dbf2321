"""``edgesam serve`` under bad input: the right 4xx with a message naming the field, never a 500."""

from __future__ import annotations

import struct
import zlib

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from edgesam.serve import ServeConfig, create_app  # noqa: E402
from serve_fixtures import demo_model, png_bytes, scene  # noqa: E402

UNKNOWN = "0" * 64


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` (a decompression bomb's signature)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\x00" * 64


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # a busy machine stalls torch's pool


@pytest.fixture(scope="module")
def client():
    config = ServeConfig(max_upload_mb=0.5, max_pixels=1_000_000)
    with TestClient(create_app(demo_model(), config), raise_server_exceptions=False) as c:
        data = png_bytes(scene()[0])
        image_id = c.post("/v1/images", content=data, headers={"Content-Type": "image/png"}).json()["image_id"]
        c.image_id = image_id  # type: ignore[attr-defined]
        yield c


def _masks(c: TestClient, body: object = None, *, raw: str | None = None, image_id: str | None = None):
    url = f"/v1/images/{image_id or c.image_id}/masks"  # type: ignore[attr-defined]
    if raw is not None:
        return c.post(url, content=raw, headers={"Content-Type": "application/json"})
    return c.post(url, json=body)


# (name, request, expected status, text the message must contain)
CASES = [
    ("not an image", lambda c: c.post("/v1/images", content=b"hello world, not an image"), 415, "PNG, JPEG or WebP"),
    ("empty upload", lambda c: c.post("/v1/images", content=b""), 422, "empty"),
    ("truncated PNG", lambda c: c.post("/v1/images", content=png_bytes(scene()[0])[:200]), 422, "decode"),
    ("over the byte limit", lambda c: c.post("/v1/images", content=b"\x89PNG" + b"0" * 600_000), 413, "limit"),
    ("huge JSON body", lambda c: _masks(c, raw='{"points": [[1, 2]], "labels": [1], "pad": "' + "x" * 700_000 + '"}'),
     413, "limit"),
    ("huge chunked JSON body", lambda c: c.post(f"/v1/images/{c.image_id}/masks",
                                                content=iter([b"[" + b"1," * 200_000] * 3),
                                                headers={"Content-Type": "application/json"}), 413, "limit"),
    ("pixel bomb header", lambda c: c.post("/v1/images", content=_png_header(50_000, 50_000)), 422, "pixels"),
    ("multipart without file", lambda c: c.post("/v1/images", files={"x": (None, "1")}), 422, "file"),
    ("unknown image id", lambda c: _masks(c, {"points": [[1, 1]], "labels": [1]}, image_id=UNKNOWN), 404, "image_id"),
    ("malformed image id", lambda c: c.get("/v1/images/..%2F..%2Fetc%2Fpasswd/embedding"), 404, ""),
    ("non-hex image id", lambda c: c.get("/v1/images/zzzz/embedding"), 422, "image_id"),
    ("malformed JSON", lambda c: _masks(c, raw='{"points": [[1, 2]'), 422, "JSON"),
    ("body not an object", lambda c: _masks(c, raw="[1, 2, 3]"), 422, ""),
    ("no prompt", lambda c: _masks(c, {}), 422, "points"),
    ("points without labels", lambda c: _masks(c, {"points": [[1, 2]]}), 422, "labels"),
    ("label count mismatch", lambda c: _masks(c, {"points": [[1, 2], [3, 4]], "labels": [1]}), 422, "labels"),
    ("label 2", lambda c: _masks(c, {"points": [[1, 2]], "labels": [2]}), 422, "labels.0"),
    ("NaN coordinate", lambda c: _masks(c, raw='{"points": [[NaN, 2]], "labels": [1]}'), 422, "points.0.0"),
    ("huge coordinate", lambda c: _masks(c, {"points": [[1e300, 2]], "labels": [1]}), 422, "points.0.0"),
    ("point with 3 values", lambda c: _masks(c, {"points": [[1, 2, 3]], "labels": [1]}), 422, "points.0"),
    ("string coordinate", lambda c: _masks(c, {"points": [["a", 2]], "labels": [1]}), 422, "points.0.0"),
    ("box x1 < x0", lambda c: _masks(c, {"box": [50, 10, 20, 40]}), 422, "box"),
    ("box of 3 numbers", lambda c: _masks(c, {"box": [1, 2, 3]}), 422, "box"),
    ("boxes with points", lambda c: _masks(c, {"boxes": [[1, 2, 3, 4]], "points": [[1, 2]], "labels": [1]}),
     422, "boxes"),
    ("too many points", lambda c: _masks(c, {"points": [[1, 2]] * 65, "labels": [1] * 65}), 422, "points"),
    ("unknown field", lambda c: _masks(c, {"points": [[1, 2]], "labels": [1], "colour": "red"}), 422, "colour"),
    ("unknown format", lambda c: _masks(c, {"points": [[1, 2]], "labels": [1], "format": "jpeg"}), 422, "format"),
    ("mask_input not base64", lambda c: _masks(c, {"mask_input": "%%%"}), 422, "mask_input"),
    ("mask_input wrong size", lambda c: _masks(c, {"mask_input": "AAAAAA=="}), 422, "mask_input"),
    ("everything grid 0", lambda c: c.post(f"/v1/images/{c.image_id}/everything", json={"points_per_side": 0}),
     422, "points_per_side"),
    ("everything threshold 2", lambda c: c.post(f"/v1/images/{c.image_id}/everything",
                                                json={"pred_iou_thresh": 2}), 422, "pred_iou_thresh"),
    ("wrong method", lambda c: c.delete(f"/v1/images/{c.image_id}"), 405, ""),
    ("unknown route", lambda c: c.get("/v1/nothing"), 404, ""),
    ("static path traversal", lambda c: c.get("/static/..%2F..%2F__init__.py"), 404, ""),
]


@pytest.mark.parametrize("name, send, status, text", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_a_clear_4xx(client, name, send, status, text):
    r = send(client)
    assert r.status_code == status, f"{name}: {r.status_code} {r.text[:300]}"
    if text:
        assert text in r.json()["detail"], r.json()


def test_server_survives_every_bad_input(client):
    for _, send, _, _ in CASES:
        assert send(client).status_code < 500
    assert client.get("/healthz").status_code == 200
    ok = _masks(client, {"points": [[10, 10]], "labels": [1]})
    assert ok.status_code == 200
    assert 'status="500"' not in client.get("/metrics").text


@pytest.mark.parametrize("ext, params, alpha", [(".jpg", [], False), (".webp", [64, 80], False), (".png", [], False),
                                                (".webp", [64, 101], False), (".webp", [], True), (".png", [], True)],
                         ids=["jpeg", "webp-lossy", "png", "webp-lossless", "webp-alpha", "png-alpha"])
def test_jpeg_webp_png_headers_and_pixel_limit(ext, params, alpha):
    import cv2
    import numpy as np

    from edgesam.serve.images import ImageError, decode_image, image_dimensions

    image = scene()[0]
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGRA if alpha else cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(ext, bgr, params)
    assert ok
    fmt, height, width = image_dimensions(data.tobytes())
    assert (height, width) == image.shape[:2] and fmt in ("jpeg", "webp", "png")
    decoded = decode_image(data.tobytes(), max_pixels=height * width)
    assert decoded.shape == image.shape and np.abs(decoded.astype(int) - image).mean() < 12
    with pytest.raises(ImageError, match="pixels"):
        decode_image(data.tobytes(), max_pixels=height * width - 1)
    with TestClient(create_app(demo_model())) as c:
        r = c.post("/v1/images", content=data.tobytes())
        assert r.status_code == 201 and (r.json()["height"], r.json()["width"]) == image.shape[:2]


def test_extended_webp_header():
    from edgesam.serve.images import ImageError, decode_image, image_dimensions

    header = b"RIFF" + struct.pack("<I", 30) + b"WEBP" + b"VP8X" + struct.pack("<I", 10) + b"\x10\x00\x00\x00"
    data = header + (40_000 - 1).to_bytes(3, "little") + (30_000 - 1).to_bytes(3, "little") + b"\x00" * 16
    assert image_dimensions(data) == ("webp", 30_000, 40_000)
    with pytest.raises(ImageError, match="exceeds"):
        decode_image(data, max_pixels=40_000_000)
