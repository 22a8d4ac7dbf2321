"""Image messages -> RGB: every supported encoding, padded rows, compressed images, refusals."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rosbags")

from edgesam.robots.images import decode_compressed, decode_image  # noqa: E402
from ros_bags import compressed_msg, image_msg, scene, typestore  # noqa: E402

STORE = typestore("ros2-mcap")
RGB = scene(2)
GRAY = (0.299 * RGB[..., 0] + 0.587 * RGB[..., 1] + 0.114 * RGB[..., 2])


@pytest.mark.parametrize("pad", [0, 5])
@pytest.mark.parametrize("encoding", ["rgb8", "bgr8"])
def test_colour_encodings_decode_exactly(encoding: str, pad: int) -> None:
    out = decode_image(image_msg(STORE, RGB, encoding, 0, pad=pad))
    assert out.dtype == np.uint8 and out.shape == RGB.shape
    np.testing.assert_array_equal(out, RGB)


@pytest.mark.parametrize("encoding", ["mono8", "mono16"])
def test_mono_encodings_become_grey_rgb(encoding: str) -> None:
    out = decode_image(image_msg(STORE, RGB, encoding, 0))
    assert out.shape == RGB.shape
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert np.abs(out[..., 0].astype(float) - GRAY).max() <= 1.0  # mono16 keeps the high byte


def test_bayer_rggb_is_demosaiced_to_the_right_colours() -> None:
    patches = np.zeros((32, 48, 3), np.uint8)
    patches[:, :16] = (220, 30, 20)  # red
    patches[:, 16:32] = (30, 200, 40)  # green
    patches[:, 32:] = (20, 40, 230)  # blue (a wrong pattern swaps red and blue)
    out = decode_image(image_msg(STORE, patches, "bayer_rggb8", 0))
    assert out.shape == patches.shape
    for x0 in (0, 16, 32):
        inner = (slice(4, 28), slice(x0 + 4, x0 + 12))
        err = np.abs(out[inner].astype(int) - patches[inner].astype(int)).max()
        assert err <= 2, (x0, err)


def test_big_endian_16_bit_takes_the_high_byte() -> None:
    msg = image_msg(STORE, RGB, "mono16", 0)
    swapped = np.frombuffer(bytes(msg.data), "<u2").astype(">u2").view(np.uint8)
    msg.data, msg.is_bigendian = swapped.copy(), 1
    out = decode_image(msg)
    assert np.abs(out[..., 0].astype(float) - GRAY).max() <= 1.0


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1"])
def test_depth_encodings_are_refused_by_name(encoding: str) -> None:
    with pytest.raises(ValueError, match=f"{encoding}.*depth"):
        decode_image(image_msg(STORE, RGB, encoding, 0))


def test_unknown_encoding_lists_the_supported_ones() -> None:
    msg = image_msg(STORE, RGB, "rgb8", 0)
    msg.encoding = "nv21"
    with pytest.raises(ValueError, match="unsupported image encoding 'nv21'.*rgb8.*bayer_rggb8"):
        decode_image(msg)


def test_short_data_is_refused() -> None:
    msg = image_msg(STORE, RGB, "rgb8", 0)
    msg.data = msg.data[: msg.data.size // 2].copy()
    with pytest.raises(ValueError, match="bytes"):
        decode_image(msg)


def test_compressed_png_is_lossless_and_jpeg_close() -> None:
    np.testing.assert_array_equal(decode_compressed(compressed_msg(STORE, RGB, 0, "png")), RGB)
    jpeg = decode_compressed(compressed_msg(STORE, RGB, 0, "jpg"))
    assert jpeg.shape == RGB.shape and np.abs(jpeg.astype(int) - RGB.astype(int)).mean() < 6


def test_corrupt_compressed_image_is_refused() -> None:
    msg = compressed_msg(STORE, RGB, 0, "png")
    msg.data = np.frombuffer(b"not a png at all", np.uint8).copy()
    with pytest.raises(ValueError, match="cannot decode compressed image"):
        decode_compressed(msg)


def test_stamp_matching_takes_the_nearest_within_the_tolerance() -> None:
    from edgesam.robots.detections import StampMatcher, match_stamps

    dets = [300, 100, 205, 1000]
    frames = [0, 98, 200, 250, 310, 995, 2000]
    want = [-1, 1, 2, -1, 0, 3, -1]  # 250: 45 and 50 away, both beyond 10
    np.testing.assert_array_equal(match_stamps(frames, dets, 10), want)
    match = StampMatcher(dets, 10)
    assert [match(f) for f in frames] == want
    assert StampMatcher([], 10)(5) == -1
    assert match_stamps([250], dets, 50).tolist() == [2]  # 45 beats 50
    with pytest.raises(ValueError, match="tolerance"):
        StampMatcher(dets, -1)


def _raw(encoding: str, px: np.ndarray) -> object:
    h, w = px.shape[:2]
    rows = np.ascontiguousarray(px).view(np.uint8).reshape(h, -1)
    return STORE.types["sensor_msgs/msg/Image"](
        header=image_msg(STORE, RGB, "rgb8", 0).header, height=h, width=w, encoding=encoding, is_bigendian=0,
        step=rows.shape[1], data=rows.reshape(-1).copy())  # fmt: skip


def test_alpha_and_16_bit_colour_encodings() -> None:
    rgba = np.concatenate([RGB, np.full((*RGB.shape[:2], 1), 7, np.uint8)], axis=-1)
    np.testing.assert_array_equal(decode_image(_raw("rgba8", rgba)), RGB)
    np.testing.assert_array_equal(decode_image(_raw("bgra8", rgba[..., [2, 1, 0, 3]])), RGB)
    bgr16 = (RGB[..., ::-1].astype("<u2") << 8) | 0x55  # the low byte is dropped
    np.testing.assert_array_equal(decode_image(_raw("bgr16", bgr16)), RGB)


def test_bayer_16_bit_and_yuv422() -> None:
    from ros_bags import mosaic_rggb

    flat = np.zeros((16, 16, 3), np.uint8)
    flat[:] = (200, 60, 30)
    bayer16 = mosaic_rggb(flat).astype("<u2") << 8
    out = decode_image(_raw("bayer_rggb16", bayer16))
    assert np.abs(out[4:12, 4:12].astype(int) - flat[4:12, 4:12]).max() <= 2
    grey = np.full((8, 8, 2), 128, np.uint8)  # U=V=128: no colour
    for encoding in ("uyvy", "yuyv"):
        out = decode_image(_raw(encoding, grey))
        assert out.shape == (8, 8, 3) and (out.max(axis=-1) - out.min(axis=-1)).max() <= 1
        assert abs(int(out[0, 0, 0]) - 128) <= 4
