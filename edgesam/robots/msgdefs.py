"""Message types for robot data: the ROS 2 typestore plus ``vision_msgs`` from its ``.msg`` text.

``rosbags`` ships the core ROS message types (``std_msgs``, ``sensor_msgs``, ...) but not
``vision_msgs``, so its detection messages are registered here from their definitions
(the layout of ``vision_msgs`` 4.x, as on ROS 2 Humble and later).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

__all__ = [
    "COMPRESSED_IMAGE",
    "DETECTION_ARRAY",
    "IMAGE",
    "IMAGE_TYPES",
    "VISION_MSGS",
    "msgdef",
    "normalize_type",
    "output_typestore",
]

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
IMAGE_TYPES = (IMAGE, COMPRESSED_IMAGE)
DETECTION_ARRAY = "vision_msgs/msg/Detection2DArray"

# name -> .msg text, in dependency order
VISION_MSGS: dict[str, str] = {
    "vision_msgs/msg/Point2D": "float64 x\nfloat64 y\n",
    "vision_msgs/msg/Pose2D": "vision_msgs/Point2D position\nfloat64 theta\n",
    "vision_msgs/msg/BoundingBox2D": "vision_msgs/Pose2D center\nfloat64 size_x\nfloat64 size_y\n",
    "vision_msgs/msg/ObjectHypothesis": "string class_id\nfloat64 score\n",
    "vision_msgs/msg/ObjectHypothesisWithPose": (
        "vision_msgs/ObjectHypothesis hypothesis\ngeometry_msgs/PoseWithCovariance pose\n"
    ),
    "vision_msgs/msg/Detection2D": (
        "std_msgs/Header header\nvision_msgs/ObjectHypothesisWithPose[] results\n"
        "vision_msgs/BoundingBox2D bbox\nstring id\n"
    ),
    "vision_msgs/msg/Detection2DArray": "std_msgs/Header header\nvision_msgs/Detection2D[] detections\n",
}


def normalize_type(msgtype: str) -> str:
    """``"sensor_msgs/Image"`` (ROS 1 spelling) -> ``"sensor_msgs/msg/Image"``."""
    parts = msgtype.split("/")
    return f"{parts[0]}/msg/{parts[1]}" if len(parts) == 2 else msgtype


@lru_cache(maxsize=1)
def output_typestore() -> Any:
    """A ``rosbags`` typestore (ROS 2 Humble) with the ``vision_msgs`` detection types added."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS2_HUMBLE)
    types: dict[str, Any] = {}
    for name, text in VISION_MSGS.items():
        types.update(get_types_from_msg(text, name))
    store.register(types)
    return store


def msgdef(msgtype: str) -> str:
    """The ROS 2 ``.msg`` definition text (with its dependencies) of an output message type."""
    text, _ = output_typestore().generate_msgdef(msgtype, ros_version=2)
    return str(text)
