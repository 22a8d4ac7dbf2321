"""``edgesam stream [MODEL] BAG ...``: segment a camera topic of a ROS bag / MCAP file into another bag."""

from __future__ import annotations

import argparse
from .grammar import Output, predictor_for


def add_bag_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of bag input (ROS 1 .bag, ROS 2 bag folder, .mcap, .db3)."""
    g = p.add_argument_group("ROS bags and MCAP (input: .bag, .mcap, .db3 or a ROS 2 bag folder; needs edgesam[ros])")
    g.add_argument("--topic", help="image topic (sensor_msgs/Image or CompressedImage; default: the only one)")
    g.add_argument("--prompt-topic", help="vision_msgs/Detection2DArray topic: its boxes prompt each frame")
    g.add_argument("--stamp-tolerance", type=float, default=0.01, metavar="S",
                   help="largest header-stamp difference between a frame and its detections (0.01 s)")
    g.add_argument("--copy-input", action="store_true", help="also copy the image and prompt topics to the output")
    g.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap",
                   help="storage of an output bag folder (default mcap); a .mcap output is a plain MCAP file")
    g.add_argument("--foxglove", nargs="?", type=int, const=8765, metavar="PORT",
                   help="serve the overlay to Foxglove on ws://127.0.0.1:PORT (default 8765)")  # fmt: skip


def run_bag(args: argparse.Namespace) -> int:
    from edgesam.robots import LiveView, segment_bag

    if args.out is None and args.foxglove is None:
        raise ValueError("give -o OUT (.mcap file or ROS 2 bag folder) and/or --foxglove [PORT]")
    if args.prompt_topic and (args.point is not None or args.box is not None):
        raise ValueError("give either --prompt-topic or --point/--box, not both")
    if not args.prompt_topic and args.point is None and args.box is None:
        raise ValueError("give --prompt-topic DETECTIONS, or --point X,Y and/or --box X0,Y0,X1,Y1 to track one object")
    if args.copy_input and args.out is None:
        raise ValueError("--copy-input needs -o OUT")
    from .stream import write_json_out

    report = Output(args)
    predictor = predictor_for(args)
    live = None
    if args.foxglove is not None:
        live = LiveView(port=args.foxglove)
        report.notice(f"live view: open {live.url} in Foxglove (topics /edgesam/overlay, /edgesam/annotations)")
    try:
        stats = segment_bag(
            predictor,
            args.video,
            output=args.out,
            topic=args.topic,
            prompt_topic=args.prompt_topic,
            point=None if args.point is None else args.point[:2],
            box=args.box,
            tolerance_s=args.stamp_tolerance,
            copy_input=args.copy_input,
            storage=args.storage,
            live=live,
            max_frames=args.max_frames,
            use_mask_input=False if args.no_mask_input else "auto",
        )
    finally:
        if live is not None:
            live.close()
    if args.prompt_topic:
        report.info(f"{stats.frames_without_detections} frames had no detections within {args.stamp_tolerance:g} s; "
                    f"{stats.detections_unmatched} detection messages matched no frame")  # fmt: skip
    if args.out is not None:
        report.info(f"-> {args.out} ({', '.join(f'{t}: {n}' for t, n in stats.topics.items())})")
    write_json_out(args.json_out, stats.to_dict())
    report.result(str(stats), {**stats.to_dict(), "out": args.out})
    return 0
