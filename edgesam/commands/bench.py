"""``edgesam bench``: latency, memory and fidelity per backend x precision on this machine.

    edgesam bench [MODEL | --arch NAME] [--preset NAME] [--backends ...] [--precisions fp32,fp16,int8]
                  [--threads N] [--quick] [-o RESULTS_DIR] [-q] [--json]
    edgesam bench report [--results-dir DIR] [-o REPORT_DIR]

Rows are appended to ``<RESULTS_DIR>/<device-id>.jsonl``; ``bench report`` renders the history
(registered as the command ``bench-report``: see :func:`edgesam.commands.grammar.rewrite_argv`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .common import results_folder
from .grammar import DEFAULT_MODEL, Output, add_json, add_model, add_out, add_quiet, add_threads, grammar_of

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
    """``[MODEL] | --arch NAME`` (+ ``--image-size``, ``--work-dir``); the old ``--bundle``/``--checkpoint``
    still parse."""
    add_model(p, required=False, backend=False, runtime_options=False,
              note="model name, checkpoint file or fp32 bundle folder (a bundle: no torch baseline); "
                   "or --arch NAME instead")  # fmt: skip
    grammar_of(p).model_default = DEFAULT_MODEL
    p.add_argument("--arch", help="instead of MODEL: this architecture with seeded random weights, e.g. vit_t")
    p.add_argument("--image-size", type=int, help="input side for --arch (default: the arch's)")
    p.add_argument("--work-dir", help="cache of exported / quantized bundles "
                                      "(default $EDGESAM_HOME/bench, ~/.cache/edgesam/bench)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench", help="benchmark every backend x precision on this machine (or: bench report)",
        description="Measure encoder / decoder latency, first mask, segment-everything, cold "
                    "start, peak RSS, file sizes and fidelity vs torch fp32, per backend x "
                    "precision, and append the rows to the results history. "
                    "`edgesam bench report` renders the history.")
    add_source_arguments(p)
    p.add_argument("--preset", metavar="NAME", help="a named grid: runtimes-fp32 (every runtime in fp32, OpenVINO "
                   "bf16), int8 (onnxruntime/openvino fp32 vs int8); --backends/--precisions win")
    p.add_argument("--backends", nargs="+", metavar="NAME",
                   help="backends to measure (comma or space separated; default: all registered)")
    p.add_argument("--precisions", nargs="+", metavar="NAME",
                   help="precisions: fp32, fp16, bf16, int8 (default fp32,fp16,int8)")
    add_threads(p)
    p.add_argument("--quick", action="store_true", help="smoke-test budget (~1 min; rough numbers)")
    add_out(p, required=False, metavar="DIR", legacy=("--results-dir",),
            help="results history folder the rows are appended to (default benchmarks/results in a checkout, "
                 "else ./edgesam-bench-results)")  # fmt: skip
    add_quiet(p, help="no progress bar", legacy=("--no-progress",))
    add_json(p, help="print this run's rows, skips and failures as JSON on stdout")
    p.set_defaults(func=run)
    r = subparsers.add_parser("bench-report", prog="edgesam bench report",
                              description="Write the markdown + PNG report of the results history "
                                          "(`edgesam bench report`).")
    r.add_argument("--results-dir", dest="report_results_dir",
                   help="results history folder (default as for `edgesam bench`)")
    add_out(r, required=False, metavar="DIR", help="report folder (default benchmarks/report beside results/)")
    r.add_argument("--no-plots", action="store_true", help="markdown only (no matplotlib needed)")
    r.set_defaults(func=run_report)


def _results_dir(value: str | None) -> Path:
    return Path(value) if value else default_results_dir()


def run_report(args: argparse.Namespace) -> int:
    """``edgesam bench report``."""
    from edgesam.bench.results import ResultsDirError
    from edgesam.bench.report import write_report

    results = _results_dir(args.report_results_dir)
    out = Path(args.out) if args.out else default_report_dir(results)
    try:
        paths = write_report(results, out, plots=not args.no_plots)
    except ResultsDirError as exc:
        print(f"edgesam bench report: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        if not str(exc).startswith("no benchmark results"):
            raise
        bench = "edgesam bench" if args.report_results_dir is None else f"edgesam bench -o {results}"
        print(f"edgesam bench report: error: {exc}: run `{bench}` first (it measures this machine and "
              "appends the rows there)", file=sys.stderr)
        return 2
    print(f"report -> {paths[0]}")
    for path in paths[1:]:
        print(f"plot   -> {path}")
    return 0


def resolve_source(args: argparse.Namespace, *, log: Any = print) -> Any:
    """`ModelSource` for MODEL or ``--arch`` (default: the embedded edgesam-demo model)."""
    from edgesam.bench.sources import prepare_source
    from edgesam.bundle.catalogue import embedded_models
    from edgesam.loading import resolve_model

    if args.model is not None and args.arch is not None:
        raise ValueError("give MODEL or --arch, not both")
    if args.image_size is not None and args.arch is None:
        raise ValueError("--image-size only applies to --arch")
    if args.arch is not None:
        return prepare_source(arch=args.arch, image_size=args.image_size, work_dir=args.work_dir, log=log)
    if args.model is None and DEFAULT_MODEL not in embedded_models():
        raise ValueError(f"give MODEL or --arch (the embedded {DEFAULT_MODEL} model is not part of this install)")
    ref = resolve_model(args.model or DEFAULT_MODEL)
    where = {"bundle": ref.path} if ref.kind == "bundle" else {"checkpoint": ref.path}
    return prepare_source(**where, work_dir=args.work_dir, log=log)


def print_summary(result: Any, *, out: Any = None) -> None:
    """This run's rows as a compact markdown table, then what was skipped or failed."""
    from edgesam.bench.report import summary_markdown

    print(summary_markdown(result.rows, result.skipped, result.failed), file=out or sys.stdout)


def run(args: argparse.Namespace) -> int:
    """``edgesam bench``: measure, append rows, print this run's table."""
    from edgesam.bench.variants import parse_names, resolve_grid

    backends, precisions = resolve_grid(getattr(args, "preset", None), parse_names(args.backends),
                                        parse_names(args.precisions))  # validated before anything slow
    results = _results_dir(args.out)
    report = Output(args)
    with results_folder(results):
        return _measure(args, results, report, backends, precisions)


def _measure(args: argparse.Namespace, results: Path, report: Output, backends: Any, precisions: Any) -> int:
    """Measure into ``results`` (created and writable) and print this run's table."""
    from edgesam.bench.suite import SuiteOptions, run_suite

    source = resolve_source(args, log=report.info)
    if source.random_weights:
        report.info(f"note: {source.arch} with seeded random weights: latency is representative, "
                    "masks (and so mask IoU) are not")
    options = SuiteOptions(backends=backends, precisions=precisions, threads=args.threads,
                           quick=args.quick, show_progress=not args.quiet,
                           work_dir=Path(args.work_dir) if args.work_dir else None)
    with report.chatter():  # ONNX Runtime's calibration prints (int8 rows): never on stdout with --json
        result = run_suite(source, options, results_dir=results, log=report.info)
    if report.json:
        report.result("", {"rows": [r.to_dict() for r in result.rows], "skipped": [s.to_dict() for s in result.skipped],
                           "failed": [f.to_dict() for f in result.failed], "files": [str(p) for p in result.files]})
    else:
        print_summary(result)
        for path in result.files:
            print(f"results -> {path}")
        where = "" if results == default_results_dir() else f" --results-dir {results}"
        print(f"render the history with: edgesam bench report{where}")
    return 1 if result.failed else 0
