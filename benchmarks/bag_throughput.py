"""Bag-to-bag throughput of ``edgesam stream BAG``: FPS and where the time goes.

Writes a synthetic camera bag (moving discs and boxes, ``--frames`` frames of ``--size``, with a
``vision_msgs/Detection2DArray`` of ``--boxes`` boxes per frame), then, in one process and on
one predictor:

1. ``model only``: ``set_image`` + one ``predict_batch`` of the boxes on the frames already in
   memory (the ceiling);
2. ``bag -> bag`` for each input format (ROS 2 MCAP folder with ``rgb8`` Image, ROS 2 sqlite3
   folder with ``rgb8`` Image, plain MCAP file with JPEG ``CompressedImage``), output a plain
   MCAP file: FPS and the share of the wall time spent reading + decoding messages
   (``read``, done in a read-ahead thread that overlaps the encoder; ``read wait`` is the part
   the pipeline waited for), encoding, decoding prompts, serializing + writing (``write``) and
   the rest (instance masks, mask boxes, building messages, waiting for frames).

The ratio bag FPS / model-only FPS says whether reading and writing are a bottleneck (1.0: not
at all). The model is an INT8 bundle (``quantize_bundle`` on the fp32 export of
``--checkpoint``, default the embedded ``edgesam-demo``; cached like ``edgesam bench``'s), or
``--bundle`` as given.

    python benchmarks/bag_throughput.py [--backend openvino] [--frames 60] [--size 640x480] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))


def _frame(i: int, h: int, w: int, rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[float, ...]]]:
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 90)], axis=-1).astype(np.uint8)
    img = np.clip(img.astype(np.int16) + rng.integers(-8, 9, img.shape), 0, 255).astype(np.uint8)  # sensor noise
    boxes = []
    for k, colour in enumerate([(240, 230, 40), (30, 200, 60), (200, 40, 200), (20, 30, 160)]):
        r = h // 10
        cx, cy = (w // 5 + k * w // 5 + 3 * i) % w, h // 3 + (k % 2) * h // 3
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = colour
        boxes.append((cx - r - 2.0, cy - r - 2.0, cx + r + 2.0, cy + r + 2.0))
    return img, boxes


def _write_input(path: Path, frames: list[Any], boxes: list[Any], *, storage: str, compressed: bool) -> Path:
    import cv2

    from edgesam.robots import BagWriter, build_detection_array, output_typestore

    t = output_typestore().types
    with BagWriter(path, storage=storage) as out:
        out.add_topic("/camera/image_raw", "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image")
        out.add_topic("/detections", "vision_msgs/msg/Detection2DArray")
        for i, (img, bx) in enumerate(zip(frames, boxes)):
            stamp = 1_700_000_000 * 10**9 + i * 33_333_333
            header = t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](
                sec=stamp // 10**9, nanosec=stamp % 10**9), frame_id="camera")  # fmt: skip
            if compressed:
                ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
                msg = t["sensor_msgs/msg/CompressedImage"](header=header, format="jpeg", data=buf.reshape(-1))
            else:
                h, w = img.shape[:2]
                msg = t["sensor_msgs/msg/Image"](header=header, height=h, width=w, encoding="rgb8", is_bigendian=0,
                                                 step=3 * w, data=img.reshape(-1))  # fmt: skip
            out.write("/camera/image_raw", stamp, msg)
            n = len(bx)
            out.write("/detections", stamp + 5_000_000, build_detection_array(
                output_typestore(), header, np.asarray(bx), np.full(n, 0.9), [str(k) for k in range(n)], ["obj"] * n))
    return path


def _predictor(args: argparse.Namespace) -> tuple[Any, str]:
    from edgesam import SamPredictor

    options: dict[str, Any] = {"threads": args.threads} if args.threads else {}
    if args.bundle:
        return SamPredictor.from_bundle(args.bundle, backend=args.backend, **options), str(args.bundle)
    from edgesam.bench.sources import gate_options, int8_bundle, prepare_source

    source = prepare_source(checkpoint=args.checkpoint, log=print)
    bundle = int8_bundle(source.bundle, args.backend, log=print, **gate_options(source))
    return SamPredictor.from_bundle(bundle, backend=args.backend, **options), str(bundle)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default="edgesam-demo")
    p.add_argument("--bundle", help="an INT8 bundle to use as is")
    p.add_argument("--backend", default="openvino")
    p.add_argument("--threads", type=int, default=0, help="runtime threads (0: the runtime's default)")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--size", default="640x480", help="WxH")
    p.add_argument("--boxes", type=int, default=4, help="detections per frame (1-4)")
    p.add_argument("--json", dest="json_out")
    args = p.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    data = [_frame(i, h, w, rng) for i in range(args.frames)]
    frames, boxes = [d[0] for d in data], [d[1][: args.boxes] for d in data]
    predictor, bundle = _predictor(args)
    from edgesam.robots import segment_bag

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = {
            "ros2-mcap rgb8": _write_input(Path(tmp, "in_mcap"), frames, boxes, storage="mcap", compressed=False),
            "ros2-sqlite3 rgb8": _write_input(Path(tmp, "in_sqlite"), frames, boxes, storage="sqlite3", compressed=False),
            "mcap jpeg": _write_input(Path(tmp, "in.mcap"), frames, boxes, storage="mcap", compressed=True),
        }  # fmt: skip
        from edgesam.robots import BagReader

        for path in inputs.values():  # warm-up: imports and type code generation happen once
            with BagReader(path) as bag:
                next(bag.frames("/camera/image_raw"))
        predictor.set_image(frames[0])
        predictor.predict_batch(boxes=np.asarray(boxes[0], np.float32), multimask_output=False)
        start = time.perf_counter()
        for img, bx in zip(frames, boxes):
            predictor.set_image(img)
            predictor.predict_batch(boxes=np.asarray(bx, np.float32), multimask_output=False)
        model_fps = len(frames) / (time.perf_counter() - start)
        print(f"model only: {model_fps:.1f} FPS")
        for name, path in inputs.items():
            stats = segment_bag(predictor, path, output=Path(tmp, f"out-{len(rows)}.mcap"), topic="/camera/image_raw",
                                prompt_topic="/detections")  # fmt: skip
            row = {"input": name, "fps": stats.fps, "vs_model_only": stats.fps / model_fps,
                   **{f"{k}_share": stats.share(k) for k in ("read", "read_wait", "encode", "decode", "write")}}  # fmt: skip
            row["other_share"] = 1.0 - sum(row[f"{k}_share"] for k in ("read_wait", "encode", "decode", "write"))
            rows.append(row)
            print(f"{name:>18}: {stats.fps:6.1f} FPS ({row['vs_model_only']:.2f}x model only); "
                  f"read+decode {100 * row['read_share']:.1f}% (waited {100 * row['read_wait_share']:.1f}%), encode {100 * row['encode_share']:.1f}%, "
                  f"prompts {100 * row['decode_share']:.1f}%, write {100 * row['write_share']:.1f}%, "
                  f"rest {100 * row['other_share']:.1f}%")  # fmt: skip
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    if args.json_out:
        result = {"bundle": bundle, "backend": args.backend, "frames": args.frames, "size": args.size,
                  "boxes": args.boxes, "model_only_fps": model_fps, "rows": rows, "loadavg": list(load),
                  "cpus": os.cpu_count(), "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}  # fmt: skip
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
