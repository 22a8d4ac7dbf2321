"""Robot data in and out: ROS 1 / ROS 2 bags and MCAP files, detector boxes as prompts, a live view.

Needs the ``ros`` extra (``pip install "edgesam[ros]"``: ``rosbags``, ``mcap``,
``foxglove-sdk``); no ROS installation.

* :class:`BagReader` reads camera frames (``sensor_msgs/Image`` in the common encodings,
  ``sensor_msgs/CompressedImage``) from ROS 1 bags, ROS 2 bags (sqlite3 or MCAP) and MCAP files;
* :func:`segment_bag` prompts every frame with the matched ``vision_msgs/Detection2DArray``
  boxes (one ``predict_batch`` call per frame) or tracks one clicked/boxed object, and writes
  instance masks and detections to an output bag (:class:`BagWriter`, atomic);
* :class:`LiveView` serves the overlay to Foxglove over its WebSocket protocol.
"""

from edgesam.robots.bagread import BagFrame, BagReader, is_bag
from edgesam.robots.bagwrite import BagWriter
from edgesam.robots.detections import (
    Detections, StampMatcher, build_detection_array, match_stamps, parse_detection_array,
)  # fmt: skip
from edgesam.robots.images import SUPPORTED_ENCODINGS, decode_compressed, decode_image
from edgesam.robots.liveview import LiveView
from edgesam.robots.msgdefs import DETECTION_ARRAY, output_typestore
from edgesam.robots.pipeline import BagRunStats, FrameResult, instance_mask, read_detections, segment_bag

__all__ = [
    "DETECTION_ARRAY",
    "SUPPORTED_ENCODINGS",
    "StampMatcher",
    "BagFrame",
    "BagReader",
    "BagRunStats",
    "BagWriter",
    "Detections",
    "FrameResult",
    "LiveView",
    "build_detection_array",
    "decode_compressed",
    "decode_image",
    "instance_mask",
    "is_bag",
    "match_stamps",
    "output_typestore",
    "parse_detection_array",
    "read_detections",
    "segment_bag",
]
