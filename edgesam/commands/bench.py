"""``edgesam bench``: latency, memory and fidelity per backend x precision on this machine.

    edgesam bench [--bundle DIR | --checkpoint PATH_OR_NAME | --arch NAME] [--backends ...]
                  [--precisions fp32,fp16,int8] [--threads N] [--quick] [--results-dir DIR]
    edgesam bench report [--results-dir DIR] [--out DIR]

Rows are appended to ``<results-dir>/<device-id>.jsonl``; ``bench report`` renders the history.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "default_report_dir", "default_results_dir", "run", "run_report"]


def default_results_dir() -> Path:
    """``benchmarks/results`` of the edgesam checkout the command runs in, else
    ``./edgesam-bench-results``."""
    import edgesam

    root = Path(edgesam.__file__).resolve().parents[1]
    if (root / "benchmarks").is_dir() and (root / "pyproject.toml").is_file():
        cwd = Path.cwd().resolve()
        if cwd == root or root in cwd.parents:
            return root / "benchmarks" / "results"
    return Path("edgesam-bench-results")


def default_report_dir(results_dir: Path) -> Path:
    """``<parent>/report`` beside a folder named ``results``, else ``<results_dir>/report``."""
    return results_dir.parent / "report" if results_dir.name == "results" else results_dir / "report"


def add_source_arguments(p: argparse.ArgumentParser) -> None:
    """``--bundle | --checkpoint | --arch`` (+ ``--image-size``, ``--work-dir``)."""
    src = p.add_mutually_exclusive_group()
    src.add_argument("--bundle", help="an exported fp32 bundle folder (no torch baseline)")
    src.add_argument("--checkpoint", help="checkpoint file or model name (default: edgesam-demo)")
    src.add_argument("--arch", help="architecture with seeded random weights, e.g. vit_t")
    p.add_argument("--image-size", type=int, help="input side for --arch (default: the arch's)")
    p.add_argument("--work-dir", help="cache of exported / quantized bundles "
                                      "(default $EDGESAM_HOME/bench, ~/.cache/edgesam/bench)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench", help="benchmark every backend x precision on this machine (or: bench report)",
        description="Measure encoder / decoder latency, first mask, segment-everything, cold "
                    "start, peak RSS, file sizes and fidelity vs torch fp32, per backend x "
                    "precision, and append the rows to the results history.")
    add_source_arguments(p)
    p.add_argument("--backends", nargs="+", metavar="NAME",
                   help="backends to measure (comma or space separated; default: all registered)")
    p.add_argument("--precisions", nargs="+", metavar="NAME", default=["fp32,fp16,int8"],
                   help="precisions: fp32, fp16, bf16, int8 (default fp32,fp16,int8)")
    p.add_argument("--threads", type=int, help="intra-op threads (default: usable CPUs)")
    p.add_argument("--quick", action="store_true", help="smoke-test budget (~1 min; rough numbers)")
    p.add_argument("--results-dir", help="results history folder (default benchmarks/results in "
                                         "a checkout, else ./edgesam-bench-results)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    sub = p.add_subparsers(dest="bench_command", metavar="report", title="sub-command (optional)")
    r = sub.add_parser("report", help="write the markdown + PNG report of the results history")
    r.add_argument("--results-dir", dest="report_results_dir",
                   help="results history folder (default as for `edgesam bench`)")
    r.add_argument("--out", help="report folder (default benchmarks/report beside results/)")
    r.add_argument("--no-plots", action="store_true", help="markdown only (no matplotlib needed)")
    r.set_defaults(func=run_report)


def _results_dir(value: str | None) -> Path:
    return Path(value) if value else default_results_dir()


def run_report(args: argparse.Namespace) -> int:
    """``edgesam bench report``."""
    from edgesam.bench.results import ResultsDirError
    from edgesam.bench.skips import write_bench_report

    results = _results_dir(getattr(args, "report_results_dir", None) or args.results_dir)
    out = Path(args.out) if args.out else default_report_dir(results)
    try:
        paths = write_bench_report(results, out, plots=not args.no_plots)
    except ResultsDirError as exc:
        print(f"edgesam bench report: error: {exc}", file=sys.stderr)
        return 2
    print(f"report -> {paths[0]}")
    for path in paths[1:]:
        print(f"plot   -> {path}")
    return 0


def resolve_source(args: argparse.Namespace, *, log: Any = print) -> Any:
    """`ModelSource` for the source arguments (default: the embedded edgesam-demo model)."""
    from edgesam.bench.sources import prepare_source
    from edgesam.bundle.catalogue import embedded_models

    checkpoint = args.checkpoint
    if args.bundle is None and args.checkpoint is None and args.arch is None:
        if "edgesam-demo" not in embedded_models():
            raise ValueError("give --checkpoint, --arch or --bundle (the embedded edgesam-demo "
                             "model is not part of this install)")
        checkpoint = "edgesam-demo"
    if args.image_size is not None and args.arch is None:
        raise ValueError("--image-size only applies to --arch")
    return prepare_source(bundle=args.bundle, checkpoint=checkpoint, arch=args.arch,
                          image_size=args.image_size, work_dir=args.work_dir, log=log)


def print_summary(result: Any, *, out: Any = None) -> None:
    """This run's rows as a compact markdown table, then what was skipped or failed."""
    from edgesam.bench.summary import summary_markdown

    print(summary_markdown(result.rows, result.skipped, result.failed), file=out or sys.stdout)


def run(args: argparse.Namespace) -> int:
    """``edgesam bench``: measure, append rows, print this run's table."""
    from edgesam.bench.results import ResultsDirError
    from edgesam.bench.suite import SuiteOptions, check_results_dir, run_suite
    from edgesam.bench.variants import parse_names, validate_names
    from edgesam.runtimes.registry import BACKENDS

    backends = parse_names(args.backends) or tuple(BACKENDS)
    precisions = parse_names(args.precisions) or ()
    validate_names(backends, precisions)  # before anything slow
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    results = _results_dir(args.results_dir)
    try:
        check_results_dir(results)
    except ResultsDirError as exc:
        print(f"edgesam bench: error: {exc}", file=sys.stderr)
        return 2
    source = resolve_source(args)
    if source.random_weights:
        print(f"note: {source.arch} with seeded random weights: latency is representative, "
              "masks (and so mask IoU) are not")
    options = SuiteOptions(backends=backends, precisions=precisions, threads=args.threads,
                           quick=args.quick, show_progress=not args.no_progress,
                           work_dir=Path(args.work_dir) if args.work_dir else None)
    result = run_suite(source, options, results_dir=results)
    print_summary(result)
    for path in result.files:
        print(f"results -> {path}")
    print(f"render the history with: edgesam bench report --results-dir {results}")
    return 1 if result.failed else 0
