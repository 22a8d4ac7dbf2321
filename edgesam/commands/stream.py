"""``edgesam stream [MODEL] VIDEO``: track a clicked/boxed object through a video -> annotated MP4 + FPS/latency;
or segment a ROS bag / MCAP camera topic into another bag (see :mod:`.stream_bag`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from .common import parse_box, parse_point
from .grammar import DEFAULT_MODEL, Output, add_json, add_model, add_out, add_quiet, add_threads, predictor_for
from .stream_bag import add_bag_arguments, run_bag


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("stream", help="track an object through a video, encoding in the background",
                              description="MODEL (default edgesam-demo) comes before VIDEO: "
                                          "`edgesam stream [MODEL] VIDEO --point X,Y -o out.mp4`.")
    add_model(p, required=False, default=DEFAULT_MODEL)
    p.add_argument("video", help="video file, camera index (0, 1, ...), or a ROS bag / MCAP file / ROS 2 bag folder")
    p.add_argument("--point", type=parse_point, metavar="X,Y", help="click on the object in the first frame")
    p.add_argument("--box", type=parse_box, metavar="X0,Y0,X1,Y1", help="box around the object in the first frame")
    add_out(p, required=False, when="required for a video or camera", help="MP4 video (mp4v codec); for a bag: "
            ".mcap file or ROS 2 bag folder (optional with --foxglove)")
    p.add_argument("--every-frame", action="store_true",
                   help="encode every frame (offline); default: read at the video's frame rate like a live "
                        "camera and drop frames the encoder cannot keep up with")  # fmt: skip
    p.add_argument("--fps", type=float, help="input frame rate to emulate (default: the video's, else 30)")
    p.add_argument("--no-mask-input", action="store_true",
                   help="never feed the previous mask logits back (default: checked on the first frame that would use "
                        "them and kept only if the mask agrees with the one decoded without them)")
    p.add_argument("--max-latency-frames", type=int, default=1, help="frames that may wait for the encoder (1)")
    p.add_argument("--max-frames", type=int, help="stop after this many input frames")
    add_threads(p)
    add_quiet(p, help="print only the statistics")
    add_json(p, help="print the stream statistics as JSON on stdout", file_option=True)
    add_bag_arguments(p)
    p.set_defaults(func=run)


_STILL_IMAGES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def _source(video: str) -> Any:
    return int(video) if video.isdigit() and not Path(video).exists() else video


def _limited(frames: Any, n: int | None) -> Any:
    for i, frame in enumerate(frames):
        if n is not None and i >= n:
            return
        yield frame


class _Writer:
    """Writes annotated frames, repeating the last one for dropped frames (keeps the duration)."""

    def __init__(self, path: str, fps: float) -> None:
        self.path, self.fps = path, fps
        self._writer: Any = None
        self._last: np.ndarray | None = None
        self._next_index = 0
        self.written = 0

    def write(self, index: int, rgb: np.ndarray) -> None:
        import cv2

        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        if self._writer is None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            h, w = bgr.shape[:2]
            self._writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                raise ValueError(f"OpenCV cannot write {self.path} (mp4v); use a .mp4 path in a writable folder")
        if self._last is not None and self._last.shape == bgr.shape:
            while self._next_index < index:
                self._writer.write(self._last)
                self._next_index += 1
                self.written += 1
        self._writer.write(bgr)
        self.written += 1
        self._last, self._next_index = bgr, index + 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()


def run(args: argparse.Namespace) -> int:
    from edgesam.robots.bagread import is_bag
    from edgesam.stream import StreamSegmenter, Tracker, open_source
    from edgesam.viz import overlay

    if is_bag(args.video):
        return run_bag(args)
    if Path(args.video).is_file() and Path(args.video).suffix.lower() in _STILL_IMAGES:
        raise ValueError(f"{args.video} is a still image, not a video: segment it with "
                         f"`edgesam segment {args.model} {args.video} --point X,Y -o mask.png`")
    if args.out is None:
        raise ValueError("give -o OUT.mp4 for the annotated video (required for a video or camera)")
    if args.point is None and args.box is None:
        raise ValueError("give --point X,Y and/or --box X0,Y0,X1,Y1 for the object to track")
    source = open_source(_source(args.video))
    fps = args.fps or source.fps or 30.0
    source.frames = _limited(source.frames, args.max_frames)
    report = Output(args)
    predictor = predictor_for(args)
    tracker = Tracker(point=None if args.point is None else args.point[:2], box=args.box,
                      use_mask_input=False if args.no_mask_input else "auto")
    writer = _Writer(args.out, fps)
    lost = segmented = 0
    try:
        with StreamSegmenter(predictor, max_latency_frames=args.max_latency_frames) as stream:
            stream.start(source, pace_fps=None if args.every_frame else fps, drop=not args.every_frame)
            for frame in stream:
                result = tracker.update(frame)
                lost += int(result.lost)
                segmented += 1
                boxes = None if result.box is None else result.box[None]
                points = None if result.point is None else result.point[None]
                writer.write(frame.index, overlay(frame.image, result.mask, points=points, boxes=boxes))
            summary = stream.stats.summary()
    finally:
        writer.close()
    report.info(f"{segmented} frames segmented: object found in {segmented - lost}, lost in {lost} -> {args.out} "
                f"({writer.written} frames at {fps:g} FPS)")
    if tracker.mask_input_check is not None:
        state = "on" if tracker.use_mask_input else "off (this model's masks degrade with it)"
        report.info(f"mask input {state}: masks with and without the previous logits agreed at IoU "
                    f"{tracker.mask_input_check:.2f} on the first check")
    data = {**summary.to_dict(), "frames_segmented": segmented, "frames_lost": lost, "out": args.out}
    write_json_out(args.json_out, summary.to_dict())
    report.result(str(summary), data)
    return 0


def write_json_out(path: str | None, data: dict[str, Any]) -> None:
    """``--json-out PATH``: ``data`` as indented JSON, written under a temporary name and renamed."""
    if not path:
        return
    import os

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, target)
