"""``edgesam deploy``: the fastest faithful backend x precision for this machine, written as a bundle.

    edgesam deploy MODEL [--calib DIR] [--min-iou 0.97] [--backends ...] [--budget-min 15]
                   [--max-rss-mb N] [--threads N] -o DIR
"""

from __future__ import annotations

import argparse
import signal
import sys

from .common import check_bundle_out
from .grammar import Output, add_json, add_model, add_out, add_quiet, add_threads


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "deploy",
        help="choose, check and write the fastest faithful way to run a model on this machine",
        description="Export MODEL, build every backend x precision this machine can run (ONNX Runtime "
        "fp32/INT8, OpenVINO f32/bf16/INT8, and torch CUDA / TensorRT where a GPU is present), gate each "
        "against fp32 torch on held-out images with generated point and box prompts, time each, and "
        "write the fastest that passes as a bundle recording the choice, with deploy-report.md and "
        "deploy.png. SamPredictor.from_bundle(DIR) then runs the recorded choice. Exit status 1 when "
        "no candidate passes (nothing is written).",
    )
    add_model(p, required=True, note="model name (see `edgesam models`) or checkpoint file", backend=False,
              runtime_options=False, legacy=())
    add_out(p, required=True, help="bundle folder to write", metavar="DIR")
    p.add_argument("--calib", metavar="DIR", help="calibration images for the INT8 candidates (your own images "
                   "are best; default: the quantizer's)")  # fmt: skip
    p.add_argument("--min-iou", type=float, default=None, metavar="X",
                   help="required mean mask IoU vs fp32 torch (default 0.97)")  # fmt: skip
    p.add_argument("--backends", nargs="+", metavar="NAME",
                   help="backends to consider, comma or space separated (default: all installed)")  # fmt: skip
    p.add_argument("--candidates", nargs="+", metavar="NAME",
                   help="candidate names to consider, e.g. openvino-fp32,openvino-bf16 (default: all)")
    p.add_argument("--budget-min", type=float, default=15.0, metavar="MIN",
                   help="time budget in minutes; candidates left when it runs out are skipped (default 15)")
    p.add_argument("--max-rss-mb", type=float, default=None, metavar="N",
                   help="reject candidates whose measured resident memory exceeds N MiB")  # fmt: skip
    add_threads(p)
    p.add_argument("--heldout", type=int, default=4, metavar="N", help="held-out images for the gate (default 4)")
    p.add_argument("--quick", action="store_true", help="smoke-test timing budget (rough numbers)")
    p.add_argument("--results-dir", help="bench history folder (default as for `edgesam bench`)")
    p.add_argument("--no-history", action="store_true", help="do not append rows to the bench history")
    p.add_argument("--work-dir", help="cache of exported bundles (default $EDGESAM_HOME/bench)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing bundle folder (or an empty folder); nothing else is replaced")
    add_quiet(p, help="print only the candidate table and the result")
    add_json(p, help="print the result (bundle, choice, history files) as JSON on stdout")
    p.set_defaults(func=run)


def _names(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def run(args: argparse.Namespace) -> int:
    from edgesam.commands.bench import default_results_dir
    from edgesam.deploy import DeployError, deploy
    from edgesam.fidelity import GATE_MIN_IOU

    check_bundle_out(args.out, overwrite=args.overwrite)
    min_iou = GATE_MIN_IOU if args.min_iou is None else float(args.min_iou)
    if not 0.0 < min_iou <= 1.0:
        raise ValueError(f"--min-iou must lie in (0, 1], got {min_iou}")
    if args.heldout < 1:
        raise ValueError(f"--heldout must be >= 1, got {args.heldout}")
    results_dir = None if args.no_history else (args.results_dir or default_results_dir())
    report = Output(args)
    shown = (lambda m: print(m, file=sys.stderr if args.json else report.stdout, flush=True))
    quiet_log = (lambda m: shown(m) if "\n" in m or m.startswith("chose") else None)

    def _terminate(signum: int, frame: object) -> None:  # SIGTERM cleans up like Ctrl-C
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        with report.chatter():  # ONNX Runtime's calibration prints: on stderr with --json, none with -q
            result = deploy(
                args.model, args.out, calib=args.calib, min_mask_iou=min_iou, backends=_names(args.backends),
                candidates=_names(args.candidates), budget_min=args.budget_min, max_rss_mb=args.max_rss_mb,
                threads=args.threads, heldout=args.heldout, quick=args.quick, work_dir=args.work_dir,
                results_dir=results_dir, overwrite=args.overwrite, log=quiet_log if args.quiet else shown,
                show_progress=not args.quiet and sys.stderr.isatty(),
            )  # fmt: skip
    except DeployError as exc:
        print(f"edgesam deploy: {exc}", file=sys.stderr)
        return 1
    except FileExistsError as exc:
        print(f"edgesam deploy: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgesam deploy: interrupted; nothing was written", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    text = f"bundle: {result.path} (report: {result.path / 'deploy-report.md'})"
    if result.history:
        text += "\nhistory: " + ", ".join(str(p) for p in result.history)
    report.result(text, {"bundle": str(result.path), "report": str(result.path / "deploy-report.md"),
                         "choice": result.record, "history": [str(p) for p in result.history]})
    return 0
