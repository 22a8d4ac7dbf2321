"""The Foxglove live view: a WebSocket client on loopback subscribes and receives a frame."""

from __future__ import annotations

import asyncio
import json
import struct
import time

import cv2
import numpy as np
import pytest

pytest.importorskip("foxglove")
websockets = pytest.importorskip("websockets")

from edgesam.robots import LiveView  # noqa: E402
from ros_bags import scene  # noqa: E402


async def _receive_one_frame(view: LiveView, image: np.ndarray, ids: np.ndarray) -> tuple[dict, bytes, int]:
    async with websockets.connect(view.url, subprotocols=["foxglove.sdk.v1"], open_timeout=5) as ws:
        channels: dict[str, dict] = {}
        deadline = time.monotonic() + 10
        while len(channels) < 2 and time.monotonic() < deadline:
            msg = await asyncio.wait_for(ws.recv(), timeout=5)
            if isinstance(msg, str) and json.loads(msg)["op"] == "advertise":
                channels.update({c["topic"]: c for c in json.loads(msg)["channels"]})
        overlay = channels["/edgesam/overlay"]
        await ws.send(json.dumps({"op": "subscribe", "subscriptions": [{"id": 7, "channelId": overlay["id"]}]}))
        while time.monotonic() < deadline:  # publish until the subscription is live and a frame arrives
            view.publish(image, ids, np.array([[30, 30, 66, 66]], np.float32), stamp_ns=1_700_000_000_123_000_000,
                         frame_id="camera")  # fmt: skip
            try:
                msg = await asyncio.wait_for(ws.recv(), timeout=0.2)
            except asyncio.TimeoutError:
                continue
            if isinstance(msg, bytes) and msg[0] == 1:  # messageData: op, subscription id, log time, payload
                sub_id, log_time = struct.unpack_from("<IQ", msg, 1)
                assert sub_id == 7
                return overlay, msg[13:], log_time
        raise AssertionError("no frame arrived")


def test_a_websocket_client_receives_the_overlay_frame() -> None:
    image = scene(0)
    ids = np.zeros(image.shape[:2], np.uint8)
    ids[32:64, 14:46] = 1
    with LiveView(port=0) as view:
        assert view.port > 0
        assert not view.publish(image, ids, np.zeros((0, 4)), stamp_ns=0)  # no viewer: nothing is encoded
        channel, payload, _ = asyncio.run(_receive_one_frame(view, image, ids))
        assert view.published >= 1
    assert channel["schemaName"] == "foxglove.CompressedImage"
    start = payload.find(b"\xff\xd8\xff")  # the JPEG inside the protobuf message
    assert start >= 0 and b"jpeg" in payload and b"camera" in payload
    shown = cv2.imdecode(np.frombuffer(payload[start:], np.uint8), cv2.IMREAD_COLOR)
    assert shown is not None and shown.shape == image.shape
    shown = cv2.cvtColor(shown, cv2.COLOR_BGR2RGB).astype(int)
    # the masked square is tinted, the rest of the frame is the picture
    assert np.abs(shown[40:56, 22:38] - image[40:56, 22:38]).mean() > 20
    assert np.abs(shown[70:90, 0:10] - image[70:90, 0:10]).mean() < 12


def test_the_port_is_checked() -> None:
    with pytest.raises(ValueError, match="port"):
        LiveView(port=70000)
