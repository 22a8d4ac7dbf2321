"""edgesam stream on real bags: ROS 1, ROS 2 (sqlite3, MCAP), plain MCAP; round trips and bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("rosbags")
pytest.importorskip("mcap")

import edgesam  # noqa: E402
from edgesam.cli import main  # noqa: E402
from edgesam.robots import BagReader, instance_mask, segment_bag  # noqa: E402
from edgesam.robots.bagread import stamp_ns  # noqa: E402
from ros_bags import (  # noqa: E402
    CAMERA, DETECTIONS, PERIOD, RECT_BOX, T0, camera_bag, disc_box, image_msg, scene, typestore, write_bag,
)  # fmt: skip

MASK, DETS = CAMERA + "/edgesam/mask", CAMERA + "/edgesam/detections"


@pytest.fixture(scope="module")
def predictor(one_torch_thread: Any) -> Any:
    return edgesam.SamPredictor(edgesam.load_model("edgesam-demo"))


def _read(path: Path, topic: str) -> list[Any]:
    with BagReader(path) as bag:
        return [bag.deserialize(raw, conn.msgtype) for conn, _, raw in bag.raw_messages([topic])]


def _mask_array(msg: Any) -> np.ndarray:
    assert msg.encoding == "mono8" and msg.step == msg.width
    return np.asarray(msg.data, np.uint8).reshape(msg.height, msg.width)


@pytest.mark.parametrize(("kind", "out_name", "storage"), [
    ("ros1", "out.mcap", "mcap"),
    ("ros2-sqlite3", "out_bag", "sqlite3"),
    ("ros2-mcap", "out_bag", "mcap"),
    ("mcap", "out.mcap", "mcap"),
])  # fmt: skip
def test_round_trip_matches_the_predictor_on_the_same_frames(tmp_path: Path, predictor: Any, kind: str,
                                                            out_name: str, storage: str) -> None:  # fmt: skip
    bag = camera_bag(tmp_path, kind, frames=3)
    out = tmp_path / out_name
    stats = segment_bag(predictor, bag, output=out, prompt_topic=DETECTIONS, storage=storage, copy_input=True)
    assert stats.frames == 3 and stats.frames_prompted == 2
    assert stats.frames_without_detections == 1  # frame 1 has no detections
    assert stats.detections_unmatched == 1  # the detection halfway between frames 0 and 1
    assert out.exists() and not [p for p in tmp_path.iterdir() if ".partial" in p.name]
    masks, dets, copied = _read(out, MASK), _read(out, DETS), _read(out, CAMERA)
    assert len(masks) == len(dets) == len(copied) == 3
    for i, (mask_msg, det_msg) in enumerate(zip(masks, dets)):
        for msg in (mask_msg, det_msg):
            assert stamp_ns(msg.header.stamp) == T0 + i * PERIOD and msg.header.frame_id == "camera"
        got = _mask_array(mask_msg)
        predictor.set_image(scene(i))
        if i == 1:
            assert not got.any() and len(det_msg.detections) == 0
            continue
        boxes = np.array([disc_box(i), RECT_BOX], np.float32)
        want, scores, _ = predictor.predict_batch(boxes=boxes, multimask_output=False)
        np.testing.assert_array_equal(got, instance_mask(want[:, 0]))
        assert set(np.unique(got)) == {0, 1, 2}
        assert [d.id for d in det_msg.detections] == [f"disc{i}", f"rect{i}"]
        for d, mask, score in zip(det_msg.detections, want[:, 0], scores[:, 0]):
            assert d.results[0].hypothesis.class_id == "thing"
            assert d.results[0].hypothesis.score == pytest.approx(float(score), abs=1e-6)
            ys, xs = np.nonzero(mask)
            cx, cy = d.bbox.center.position.x, d.bbox.center.position.y
            assert (cx - d.bbox.size_x / 2, cy - d.bbox.size_y / 2) == pytest.approx((xs.min(), ys.min()))
            assert (cx + d.bbox.size_x / 2, cy + d.bbox.size_y / 2) == pytest.approx((xs.max(), ys.max()))
    from edgesam.robots import decode_image

    assert stamp_ns(copied[2].header.stamp) == T0 + 2 * PERIOD
    np.testing.assert_array_equal(decode_image(copied[2]), scene(2))  # the input frame, copied across


def test_compressed_images_and_the_tracker_through_the_cli(tmp_path: Path, predictor: Any, capsys: Any) -> None:
    bag = camera_bag(tmp_path, "ros2-mcap", frames=3, compressed=True, detections=False)
    with BagReader(bag) as reader:
        frames = list(reader.frames(reader.image_topic(None)))
    assert [f.stamp_ns for f in frames] == [T0 + i * PERIOD for i in range(3)]
    for i, f in enumerate(frames):
        np.testing.assert_array_equal(f.image, scene(i))  # PNG: lossless
    out = tmp_path / "tracked.mcap"
    x0, y0, x1, y1 = disc_box(0)
    code = main(["stream", "edgesam-demo", str(bag), "--box", f"{x0},{y0},{x1},{y1}", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    masks = [_mask_array(m) for m in _read(out, MASK)]
    assert len(masks) == 3
    from edgesam.stream import Tracker

    tracker = Tracker(box=disc_box(0))
    for i, mask in enumerate(masks):  # what the tracker gives on the same frames
        predictor.set_image(scene(i))
        np.testing.assert_array_equal(mask, tracker.update(predictor).mask.astype(np.uint8))
    ys, xs = np.nonzero(masks[0])
    assert abs(xs.mean() - 30) < 6 and abs(ys.mean() - 48) < 6  # the disc in the first frame


def test_the_cli_asks_for_an_output_and_a_prompt(tmp_path: Path, capsys: Any) -> None:
    bag = camera_bag(tmp_path, "ros1", frames=1)
    assert main(["stream", "edgesam-demo", str(bag), "--prompt-topic", DETECTIONS]) == 2
    assert "give -o OUT" in capsys.readouterr().err
    assert main(["stream", "edgesam-demo", str(bag), "-o", str(tmp_path / "o.mcap")]) == 2
    assert "--prompt-topic" in capsys.readouterr().err


def _cli_error(capsys: Any, *argv: str) -> str:
    assert main(["stream", "edgesam-demo", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgesam stream: error:") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("kind", ["ros1", "mcap", "ros2-sqlite3"])
def test_corrupt_or_truncated_bag_is_a_one_line_error(tmp_path: Path, capsys: Any, kind: str) -> None:
    bag = camera_bag(tmp_path, kind, frames=3)
    target = bag if bag.is_file() else next(bag.glob("*.db3"))
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2] if kind != "ros2-sqlite3" else b"\0" * 512 + data[512:])
    err = _cli_error(capsys, str(bag), "--prompt-topic", DETECTIONS, "-o", str(tmp_path / "o.mcap"))
    assert "cannot read bag" in err
    assert not (tmp_path / "o.mcap").exists()


def test_the_output_may_not_be_the_input(tmp_path: Path, capsys: Any) -> None:
    bag = camera_bag(tmp_path, "mcap", frames=1)
    before = bag.read_bytes()
    assert "is the input bag" in _cli_error(capsys, str(bag), "--prompt-topic", DETECTIONS, "-o", str(bag))
    assert bag.read_bytes() == before


def test_garbage_file_with_a_bag_suffix(tmp_path: Path, capsys: Any) -> None:
    bag = tmp_path / "x.bag"
    bag.write_bytes(b"#ROSBAG V2.0\n" + b"\x07" * 100)
    assert "cannot read bag" in _cli_error(capsys, str(bag), "--box", "1,1,5,5", "-o", str(tmp_path / "o.mcap"))


def test_empty_topic_unknown_topic_wrong_prompt_type(tmp_path: Path, capsys: Any) -> None:
    store = typestore("ros2-sqlite3")
    msgs = [("/cam/left", "sensor_msgs/msg/Image", T0, image_msg(store, scene(0), "rgb8", T0)),
            ("/cam/right", "sensor_msgs/msg/Image", T0, image_msg(store, scene(0), "rgb8", T0))]
    bag = write_bag(tmp_path / "two", "ros2-sqlite3", msgs, store)
    out = str(tmp_path / "o.mcap")
    err = _cli_error(capsys, str(bag), "--box", "1,1,5,5", "-o", out)
    assert "give --topic" in err and "/cam/left, /cam/right" in err
    err = _cli_error(capsys, str(bag), "--topic", "/nope", "--box", "1,1,5,5", "-o", out)
    assert "/nope is not in" in err and "image topics: /cam/left, /cam/right" in err
    err = _cli_error(capsys, str(bag), "--topic", "/cam/left", "--prompt-topic", "/cam/right", "-o", out)
    assert "/cam/right is sensor_msgs/msg/Image, expected vision_msgs/msg/Detection2DArray" in err

    from rosbags.rosbag2 import Writer

    empty = tmp_path / "empty"
    with Writer(empty, version=9) as w:
        w.add_connection(CAMERA, "sensor_msgs/msg/Image", typestore=store)
    assert f"{CAMERA} has no messages" in _cli_error(capsys, str(empty), "--box", "1,1,5,5", "-o", out)
    assert not Path(out).exists()


def test_unsupported_encoding_in_a_bag_names_it(tmp_path: Path, capsys: Any) -> None:
    bag = camera_bag(tmp_path, "ros1", frames=2, encoding="32FC1", detections=False)
    err = _cli_error(capsys, str(bag), "--box", "1,1,5,5", "-o", str(tmp_path / "o.mcap"))
    assert "message 0" in err and "'32FC1'" in err and "depth" in err
    assert not list(tmp_path.glob("*.mcap")) and not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_16_bit_and_bayer_frames_are_converted(tmp_path: Path, predictor: Any) -> None:
    for encoding in ("mono16", "bayer_rggb8"):
        bag = camera_bag(tmp_path, "ros2-mcap", frames=2, encoding=encoding, stem=encoding)
        stats = segment_bag(predictor, bag, output=tmp_path / f"{encoding}.mcap", prompt_topic=DETECTIONS)
        assert stats.frames == 2 and stats.objects == 2
        assert any(_mask_array(m).any() for m in _read(tmp_path / f"{encoding}.mcap", MASK))


def test_an_interrupted_run_leaves_no_output(tmp_path: Path, predictor: Any) -> None:
    bag = camera_bag(tmp_path, "mcap", frames=3)

    def stop(result: Any) -> None:
        if result.frame.index == 1:
            raise KeyboardInterrupt

    for out in (tmp_path / "o.mcap", tmp_path / "o_bag"):
        with pytest.raises(KeyboardInterrupt):
            segment_bag(predictor, bag, output=out, prompt_topic=DETECTIONS, on_frame=stop)
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mcap"]


ROS1_VISION_MSGS = {  # vision_msgs 1.x (ROS 1 Noetic): centre as geometry_msgs/Pose2D, integer class ids
    "vision_msgs/msg/ObjectHypothesisWithPose": "int64 id\nfloat64 score\ngeometry_msgs/PoseWithCovariance pose\n",
    "vision_msgs/msg/BoundingBox2D": "geometry_msgs/Pose2D center\nfloat64 size_x\nfloat64 size_y\n",
    "vision_msgs/msg/Detection2D": ("Header header\nvision_msgs/ObjectHypothesisWithPose[] results\n"
                                    "vision_msgs/BoundingBox2D bbox\nsensor_msgs/Image source_img\n"
                                    "bool is_tracking\nstring tracking_id\n"),
    "vision_msgs/msg/Detection2DArray": "Header header\nvision_msgs/Detection2D[] detections\n",
}


def test_ros1_vision_msgs_layout_prompts_and_is_copied_as_ros2(tmp_path: Path, predictor: Any) -> None:
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    from ros_bags import header

    store = get_typestore(Stores.ROS1_NOETIC)
    for name, text in ROS1_VISION_MSGS.items():
        store.register(get_types_from_msg(text, name))
    t = store.types
    x0, y0, x1, y1 = disc_box(0)
    pose = t["geometry_msgs/msg/PoseWithCovariance"](
        pose=t["geometry_msgs/msg/Pose"](position=t["geometry_msgs/msg/Point"](x=0.0, y=0.0, z=0.0),
                                         orientation=t["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0)),
        covariance=np.zeros(36))  # fmt: skip
    det = t["vision_msgs/msg/Detection2D"](
        header=header(store, T0), results=[t["vision_msgs/msg/ObjectHypothesisWithPose"](id=42, score=0.8, pose=pose)],
        bbox=t["vision_msgs/msg/BoundingBox2D"](center=t["geometry_msgs/msg/Pose2D"](x=(x0 + x1) / 2, y=(y0 + y1) / 2,
                                                                                     theta=0.0),
                                                size_x=x1 - x0, size_y=y1 - y0),
        source_img=image_msg(store, np.zeros((1, 1, 3), np.uint8), "rgb8", T0), is_tracking=False, tracking_id="d7")
    msgs = [(CAMERA, "sensor_msgs/msg/Image", T0, image_msg(store, scene(0), "rgb8", T0)),
            (DETECTIONS, "vision_msgs/msg/Detection2DArray", T0,
             t["vision_msgs/msg/Detection2DArray"](header=header(store, T0), detections=[det]))]  # fmt: skip
    bag = write_bag(tmp_path / "noetic.bag", "ros1", msgs, store)
    out = tmp_path / "out.mcap"
    stats = segment_bag(predictor, bag, output=out, prompt_topic=DETECTIONS, copy_input=True)
    assert stats.frames == stats.frames_prompted == stats.objects == 1
    predictor.set_image(scene(0))
    want, _, _ = predictor.predict_batch(boxes=np.array([disc_box(0)], np.float32), multimask_output=False)
    np.testing.assert_array_equal(_mask_array(_read(out, MASK)[0]), instance_mask(want[:, 0]))
    (result,) = _read(out, DETS)[0].detections
    assert result.id == "d7" and result.results[0].hypothesis.class_id == "42"
    (copied,) = _read(out, DETECTIONS)[0].detections  # rebuilt in the ROS 2 layout
    assert copied.id == "d7" and copied.results[0].hypothesis.score == pytest.approx(0.8)
    assert copied.bbox.center.position.x == pytest.approx((x0 + x1) / 2) and copied.bbox.size_x == pytest.approx(x1 - x0)


def test_the_output_mcap_decodes_with_the_reference_ros2_decoder(tmp_path: Path, predictor: Any) -> None:
    """The schemas are standard ros2msg text: mcap-ros2-support (as Foxglove's tooling) decodes them."""
    mcap_ros2 = pytest.importorskip("mcap_ros2.decoder")
    from mcap.reader import make_reader

    bag = camera_bag(tmp_path, "ros2-sqlite3", frames=2)
    out = tmp_path / "out.mcap"
    segment_bag(predictor, bag, output=out, prompt_topic=DETECTIONS)
    want = [_mask_array(m) for m in _read(out, MASK)]
    got, boxes = [], []
    with open(out, "rb") as f:
        reader = make_reader(f, decoder_factories=[mcap_ros2.DecoderFactory()])
        for schema, channel, _, msg in reader.iter_decoded_messages():
            if channel.topic == MASK:
                assert schema.name == "sensor_msgs/msg/Image" and msg.encoding == "mono8"
                got.append(np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width))
            elif channel.topic == DETS:
                assert schema.name == "vision_msgs/msg/Detection2DArray"
                boxes.append([(d.id, d.bbox.size_x) for d in msg.detections])
    assert len(got) == 2 and all((g == w).all() for g, w in zip(got, want))
    assert [[i for i, _ in b] for b in boxes] == [["disc0", "rect0"], []]
