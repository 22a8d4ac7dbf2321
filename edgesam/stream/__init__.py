"""Streams for robots: background encoding, newest-embedding decoding, prompt tracking.

* :class:`StreamSegmenter` takes frames (arrays, ``cv2.VideoCapture``, video files, cameras,
  iterators), encodes them in a background thread fed by a bounded slot that drops stale
  frames, and hands out the newest :class:`EncodedFrame` to decode prompts on;
* :class:`Tracker` follows a clicked/boxed object by re-prompting each frame with the previous
  mask (as low-resolution logits), its box and an interior point;
* :class:`StreamStats` reports FPS, dropped frames and p50/p90 latencies.
"""

from edgesam.stream.segmenter import EncodedFrame, StreamSegmenter
from edgesam.stream.slot import LatestSlot, SlotClosed
from edgesam.stream.frames import FrameSource, open_source
from edgesam.stream.stats import LatencySummary, StreamStats, StreamSummary
from edgesam.stream.tracker import Tracker, TrackResult, interior_point, mask_box, translate_logits

__all__ = [
    "EncodedFrame",
    "FrameSource",
    "LatencySummary",
    "LatestSlot",
    "SlotClosed",
    "StreamSegmenter",
    "StreamStats",
    "StreamSummary",
    "TrackResult",
    "Tracker",
    "interior_point",
    "mask_box",
    "open_source",
    "translate_logits",
]
