"""The benchmark suite: every backend x precision of one model, measured side by side.

    from edgesam.bench.sources import prepare_source
    from edgesam.bench.suite import SuiteOptions, run_suite

    source = prepare_source(arch="vit_t")
    result = run_suite(source, SuiteOptions(quick=True), results_dir="benchmarks/results")

Per variant (see `edgesam.bench.variants`): the timed cases of `edgesam.bench.cases`, a cold
start and peak RSS measured in fresh processes (`edgesam.bench.coldstart`), baseline / steady /
peak RSS over repeated set_image + predict in a fresh runtime-only process
(`edgesam.bench.memory`), model file sizes, and fidelity against the reference (torch fp32;
without torch weights, the backend's own fp32). The torch fp32 baseline runs first, in the same
run, so every row carries its speed-up. Unavailable combinations are skipped with a reason; a
combination that fails is recorded as failed; neither stops the run.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .cases import FULL_BUDGET, QUICK_BUDGET, BudgetPlans, time_cases
from .coldstart import measure_cold_start, open_predictor
from edgesam.hardware import device_fingerprint, device_id
from .fidelity import Outputs, collect_outputs
from .memory import rss_metrics
from .results import Metric, ResultRow, append_rows, check_results_dir, utc_now_iso
from .rowmaker import RowMaker
from .skips import record_skips
from .sources import ModelSource, file_sizes_mb, gate_options, int8_bundle, quantized_ops
from .timing import pin_torch_threads, restore_torch_threads
from .variants import DEFAULT_PRECISIONS, Skipped, Variant, plan_variants
from .workload import Workload, make_workload

__all__ = ["SuiteOptions", "SuiteResult", "check_results_dir", "run_suite"]

Log = Callable[[str], None]
_PHASES = ("prepare", "encoder", "first_mask", "decoders", "everything", "cold start")


@dataclass(frozen=True)
class SuiteOptions:
    """How a suite run is configured.

    Attributes:
        backends: registry names to measure (None: every registered backend).
        precisions: precision names (see `edgesam.bench.variants.PRECISIONS`).
        threads: intra-op threads for every backend (None: the usable CPUs of this machine).
        quick: smoke-test budget (`QUICK_BUDGET`); rows are flagged quick.
        budget: explicit budget, overriding `quick`'s choice (tests use tiny ones).
        image_hw: (height, width) of the sample scene.
        work_dir: cache for INT8 bundles when the fp32 bundle's folder is not writable.
        show_progress: draw a tqdm progress bar on stderr (none when tqdm is not installed).
        quantize_options: extra keywords for ``quantize_bundle``.
    """

    backends: tuple[str, ...] | None = None
    precisions: tuple[str, ...] = DEFAULT_PRECISIONS
    threads: int | None = None
    quick: bool = False
    budget: BudgetPlans | None = None
    image_hw: tuple[int, int] = (480, 640)
    work_dir: Path | None = None
    show_progress: bool = True
    quantize_options: dict[str, Any] = field(default_factory=dict)

    def resolved_budget(self) -> BudgetPlans:
        return self.budget or (QUICK_BUDGET if self.quick else FULL_BUDGET)


@dataclass
class SuiteResult:
    """Outcome of `run_suite`.

    Attributes:
        rows: one per measured variant, baseline first.
        skipped: combinations not available here, with reasons.
        failed: combinations that raised, with the error as reason.
        files: JSONL / skip files written (empty without a results folder).
        bundles: variant label -> bundle folder it ran.
    """

    rows: list[ResultRow]
    skipped: list[Skipped]
    failed: list[Skipped]
    files: list[Path] = field(default_factory=list)
    bundles: dict[str, Path] = field(default_factory=dict)


def _load_average() -> float | None:
    """1-minute system load average (noise indicator; None off Unix)."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


def _measure(variant: Variant, source: ModelSource, work: Workload, budget: BudgetPlans, threads: int | None,
             options: SuiteOptions, step: Log,
             log: Log) -> tuple[dict[str, Metric], Outputs, dict[str, Any], Path | None]:
    """Metrics, fidelity outputs, extra config notes and bundle of one variant."""
    step("prepare")
    spec: dict[str, Any] = {"backend": variant.backend, "precision": variant.precision, "threads": threads,
                            "options": dict(variant.options)}
    bundle: Path | None = None
    if variant.bundle_kind == "torch":
        spec["checkpoint"] = str(source.checkpoint)
    else:
        bundle = source.bundle if variant.bundle_kind == "fp32" else int8_bundle(
            source.bundle, variant.backend, work_dir=options.work_dir, log=log,
            **{**gate_options(source), **options.quantize_options})
        spec["bundle"] = str(bundle)
    predictor = open_predictor(spec)
    effective = getattr(predictor.backend, "effective_precision", None)
    notes = {"runs": effective} if isinstance(effective, str) and effective else {}
    loads = [_load_average()]
    metrics: dict[str, Metric] = dict(time_cases(predictor, work, budget, step))
    loads = [x for x in loads + [_load_average()] if x is not None]
    if loads:  # the highest of start and end: load that arrived mid-run counts
        metrics["load_avg_1m"] = max(loads)
    outputs = collect_outputs(predictor, work.fidelity)
    del predictor
    gc.collect()
    if bundle is not None:
        metrics.update(file_sizes_mb(bundle))
        metrics.update(quantized_ops(bundle))
    elif source.checkpoint is not None:
        metrics["model_mb"] = source.checkpoint.stat().st_size / 2**20
    step("cold start")
    if budget.cold_start_runs > 0:
        cold = measure_cold_start(spec, work.image, work.point, runs=budget.cold_start_runs)
        rss = rss_metrics(spec, work.image.shape[:2], calls=10 if budget == FULL_BUDGET else 3)
        metrics["cold_start"] = cold.total
        metrics["peak_rss_mb"] = max(rss.pop("peak_rss_mb"), cold.peak_rss_mb or 0.0)
        metrics.update(rss)
    return metrics, outputs, notes, bundle


def _progress_bar(total: int, show: bool) -> Any:
    """A tqdm bar on stderr (None when not shown or tqdm is not installed)."""
    if not show:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="bench")


def run_suite(source: ModelSource, options: SuiteOptions = SuiteOptions(), *,
              results_dir: str | os.PathLike[str] | None = None, log: Log = print) -> SuiteResult:
    """Measure every requested backend x precision of `source` on this machine.

    Args:
        source: the model (`edgesam.bench.sources.prepare_source`).
        options: what to measure and with which budget.
        results_dir: append the rows to ``<results_dir>/<device_id>.jsonl`` and the skips to
            its ``.skipped.json`` (checked for writability before measuring); None: keep in memory.
        log: receives one-line progress messages (quantizing, failures).

    Raises:
        ValueError: unknown backend or precision name.
        ResultsDirError: `results_dir` is not a writable folder.
    """
    from edgesam.runtimes.registry import BACKENDS

    if results_dir is not None:
        check_results_dir(results_dir)
    budget = options.resolved_budget()
    fp = device_fingerprint()
    threads = options.threads if options.threads is not None else (fp.get("cpu") or {}).get("usable_cpus")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    backends = tuple(options.backends) if options.backends is not None else tuple(BACKENDS)
    variants, skipped = plan_variants(backends, options.precisions, has_torch_weights=source.checkpoint is not None,
                                      isa=(fp.get("cpu") or {}).get("isa") or ())
    work = make_workload(height=options.image_hw[0], width=options.image_hw[1], fidelity_images=budget.fidelity_images)
    maker = RowMaker(source=source, image_label=work.size_label, threads=threads, quick=options.quick, fingerprint=fp)
    result = SuiteResult(rows=[], skipped=skipped, failed=[])
    bar = _progress_bar(len(variants) * len(_PHASES), options.show_progress)

    def say(msg: str) -> None:  # clear the bar around a message, so lines do not interleave
        if bar is not None:
            bar.clear()
        log(msg)
        if bar is not None:
            bar.refresh()

    torch_threads = pin_torch_threads(threads)
    try:
        for i, variant in enumerate(variants):
            def step(phase: str, label: str = variant.label, first: int = i * len(_PHASES)) -> None:
                if bar is not None:  # the bar stands at the phase's index, whichever phases a variant skips
                    bar.update(first + _PHASES.index(phase) - bar.n)
                    bar.set_postfix_str(f"{label}: {phase}")

            try:
                metrics, outputs, notes, bundle = _measure(variant, source, work, budget, threads, options, step, say)
            except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
                _record_failure(variant, exc, result, say)
                continue
            finally:
                if bar is not None:
                    bar.update((i + 1) * len(_PHASES) - bar.n)
            row = maker.add(variant, metrics, outputs, notes)
            result.rows.append(row)
            if bundle is not None:
                result.bundles[variant.label] = bundle
            if results_dir is not None:  # write as we go: an interrupted run keeps its rows
                result.files += [p for p in append_rows(results_dir, [row]) if p not in result.files]
    finally:
        if bar is not None:
            bar.close()
        restore_torch_threads(torch_threads)
        if results_dir is not None:
            entries = [{**s.to_dict(), "arch": source.arch, "image_size": source.image_size, "model": source.name,
                        "timestamp": utc_now_iso(), "commit": fp.get("git_commit")}
                       for s in result.skipped + result.failed]
            skip_file = record_skips(results_dir, device_id(fp), entries)
            if skip_file is not None:
                result.files.append(skip_file)
    return result


def _record_failure(variant: Variant, exc: Exception, result: SuiteResult, log: Log) -> None:
    """A runtime that turns out unusable is a skip; any other error is a failure."""
    from edgesam.runtimes.base import BackendUnavailableError

    reason = f"{type(exc).__name__}: {exc}".strip()
    if isinstance(exc, BackendUnavailableError):
        result.skipped.append(Skipped(variant.backend, variant.precision, reason))
        log(f"{variant.label}: skipped: {reason}")
    else:
        result.failed.append(Skipped(variant.backend, variant.precision, f"failed: {reason}"))
        log(f"{variant.label}: FAILED: {reason}")
