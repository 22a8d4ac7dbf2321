"""``edgesam deploy``: build every candidate, gate it, time it, keep the fastest faithful one.

:func:`deploy` exports the model once (cached like ``edgesam bench``), tries each candidate
this machine can run (:mod:`edgesam.deploy.candidates`) within a time budget, gates it with
the fidelity module against fp32 torch on held-out images (:mod:`edgesam.deploy.gate`), times
it in-process (:mod:`edgesam.deploy.timing`), picks the fastest that passes
(:mod:`edgesam.deploy.choose`) and writes the chosen candidate's bundle with the choice
recorded under ``deploy`` in ``edgesam.json``, plus ``deploy-report.md`` and ``deploy.png``.
Everything is staged in a temporary folder beside the output and renamed into place at the
end: an interrupted or failed run leaves no output folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from edgesam.bench.timing import pin_torch_threads, restore_torch_threads
from edgesam.deploy.candidates import CandidateSpec, plan_candidates
from edgesam.deploy.choose import CandidateResult, choose
from edgesam.deploy.gate import CachedBackend, gate_candidate, heldout_images
from edgesam.deploy.report import candidate_table, write_deploy_report, write_plot
from edgesam.deploy.timing import FULL_TIMING, QUICK_TIMING, load_average, time_candidate
from edgesam.fidelity import GATE_MIN_IOU

__all__ = ["DeployError", "DeployResult", "deploy"]

Log = Callable[[str], None]


class DeployError(RuntimeError):
    """No candidate passes; ``candidates`` holds every result (nothing was written)."""

    def __init__(self, message: str, candidates: list[CandidateResult]) -> None:
        super().__init__(message)
        self.candidates = candidates


@dataclass(frozen=True)
class DeployResult:
    """The written bundle, the chosen candidate, every candidate and the ``deploy`` record."""

    path: Path
    chosen: CandidateResult
    candidates: list[CandidateResult]
    record: dict[str, Any]
    history: list[Path] = field(default_factory=list)


def _cuda() -> bool | str:
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    return True if torch.cuda.is_available() else "torch sees no CUDA device"


def _reference(checkpoint: Path) -> Any:
    from edgesam.hub import load_model
    from edgesam.predictor import SamPredictor
    from edgesam.runtimes.torch_backend import TorchBackend

    return SamPredictor(CachedBackend(TorchBackend(load_model(checkpoint))))


def _open(spec: CandidateSpec, bundle: Path | None, checkpoint: Path, options: dict[str, Any]) -> Any:
    from edgesam.predictor import SamPredictor

    if spec.backend == "torch":
        from edgesam.hub import load_model
        from edgesam.runtimes.torch_backend import TorchBackend

        device = options.get("device", "cpu")
        return SamPredictor(TorchBackend(load_model(checkpoint), device=device, precision=options.get("precision")))
    from edgesam.runtimes.loader import load_backend

    return SamPredictor(load_backend(bundle, spec.backend, **options))  # type: ignore[arg-type]


def _options(spec: CandidateSpec, threads: int | None) -> dict[str, Any]:
    from edgesam.loading import thread_options
    from edgesam.runtimes.loader import merge_options

    return merge_options(dict(spec.options), thread_options(spec.backend, threads))


class _Runner:
    """State shared by the candidates of one run."""

    def __init__(self, source: Any, stage: Path, images: list[Any], threads: int | None, usable: int,
                 calib: Any, min_mask_iou: float, prompts: int, quick: bool, log: Log) -> None:  # fmt: skip
        self.source, self.stage, self.images, self.threads, self.usable = source, stage, images, threads, usable
        self.calib, self.min_mask_iou, self.prompts, self.quick, self.log = calib, min_mask_iou, prompts, quick, log
        self.reference = _reference(source.checkpoint)
        self.int8: dict[tuple[str, str | None], Path] = {}

    def bundle(self, spec: CandidateSpec) -> Path | None:
        if spec.backend == "torch":
            return None
        if not spec.int8:
            return Path(self.source.bundle)
        key = (spec.backend, spec.recipe)
        if key not in self.int8:
            from edgesam.quantization import quantize_bundle

            target = self.stage / f"int8-{spec.backend}-{spec.recipe or 'default'}"
            self.log(f"quantizing for {spec.backend}, recipe {spec.recipe or 'default'} "
                     f"(calibration: {self.calib or 'quantizer default'})")  # fmt: skip
            # no gate, search or speed check here: deploy gates and times every candidate itself
            quantize_bundle(self.source.bundle, target, backend=spec.backend, calib_dir=self.calib,
                            recipe=spec.recipe, min_mask_iou=self.min_mask_iou, gate=False, search=False,
                            measure_speed=False, log=lambda m: self.log(f"  {m}"))  # fmt: skip
            self.int8[key] = target
        return self.int8[key]

    def rss(self, spec: CandidateSpec, bundle: Path | None, options: dict[str, Any]) -> float | None:
        """Steady-state RSS (MiB) of the candidate in a fresh runtime-only process, or None for torch."""
        if bundle is None:
            return None
        from edgesam.bench.memory import measure_rss

        h, w = self.images[0].shape[:2]
        figures = measure_rss(bundle, backend=spec.backend, options=options, image_size=(h, w),
                              calls=3 if self.quick else 6, threads=self.threads)  # fmt: skip
        return float(figures.steady_mb)

    def run(self, spec: CandidateSpec) -> CandidateResult:
        from edgesam.runtimes.precision import PrecisionCheckError

        start = time.monotonic()
        options = _options(spec, self.threads)
        result = CandidateResult(spec.name, spec.backend, spec.precision, options=options)
        try:
            bundle = self.bundle(spec)
            result.bundle = None if bundle is None else str(bundle)
            predictor = _open(spec, bundle, self.source.checkpoint, options)
        except PrecisionCheckError as exc:
            result.status, result.reason = "rejected", f"golden check at load: {exc}"
        except Exception as exc:  # noqa: BLE001 - recorded; the run goes on
            result.status, result.reason = "failed", f"{type(exc).__name__}: {exc}"
        else:
            try:
                report = gate_candidate(self.reference, predictor, self.images, prompts_per_image=self.prompts)
                result.fidelity = report.to_dict()
                result.load_avg_1m = load_average()
                stats = time_candidate(predictor, self.images[0], QUICK_TIMING if self.quick else FULL_TIMING)
                result.latency_ms = {k: v.to_dict() for k, v in stats.items()}
                after = load_average()
                loads = [x for x in (result.load_avg_1m, after) if x is not None]
                result.under_load = bool(loads) and max(loads) > self.usable
                result.rss_mb = self.rss(spec, bundle, options)
                result.status = "passed"  # provisional: choose() decides
            except Exception as exc:  # noqa: BLE001
                result.status, result.reason = "failed", f"{type(exc).__name__}: {exc}"
            finally:
                del predictor
        result.seconds = time.monotonic() - start
        return result


def _copy_bundle(src: Path, dst: Path) -> dict[str, Any]:
    from edgesam.bundle.format import load_bundle

    bundle = load_bundle(src)
    dst.mkdir(parents=True)
    for name in bundle.metadata["files"]:
        target = dst / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / name, target)
    return {k: v for k, v in bundle.metadata.items() if k not in ("format", "format_version", "files")}


def _history_rows(results: Sequence[CandidateResult], source: Any, threads: int | None, quick: bool,
                  fp: dict[str, Any]) -> list[Any]:  # fmt: skip
    from edgesam.bench.results import BenchConfig, ResultRow
    from edgesam.bench.timing import TimingStats

    rows = []
    for r in results:
        if not r.latency_ms or r.fidelity is None:
            continue
        extra = {"model": source.name, "image": "deploy held-out", "source": "edgesam deploy",
                 "chosen": r.status == "chosen"}  # fmt: skip
        config = BenchConfig(backend=r.backend, precision=r.precision, arch=source.arch,
                             image_size=source.image_size, threads=threads, quick=quick, extra=extra)  # fmt: skip
        metrics: dict[str, Any] = {k: TimingStats.from_dict(v) for k, v in r.latency_ms.items()}
        if r.load_avg_1m is not None:
            metrics["load_avg_1m"] = r.load_avg_1m
        fidelity = {k: float(r.fidelity[k]) for k in ("embedding_cosine_mean", "mask_iou_mean", "mask_iou_min",
                                                      "mask_iou_p5", "score_abs_diff_max")}  # fmt: skip
        rows.append(ResultRow.create(config, metrics, fidelity=fidelity, baseline="torch fp32", fingerprint=fp))
    return rows


def deploy(
    model: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    calib: str | os.PathLike[str] | None = None,
    min_mask_iou: float = GATE_MIN_IOU,
    backends: Sequence[str] | None = None,
    candidates: Sequence[str] | None = None,
    budget_min: float = 15.0,
    max_rss_mb: float | None = None,
    threads: int | None = None,
    heldout: int = 4,
    prompts_per_image: int = 8,
    quick: bool = False,
    work_dir: str | os.PathLike[str] | None = None,
    results_dir: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    log: Log = print,
    show_progress: bool = True,
) -> DeployResult:
    """Choose, check and write the fastest faithful way to run ``model`` on this machine.

    Args:
        model: a zoo name (``edgesam models``), a checkpoint file, or ``"edgesam-demo"``.
        out: the bundle folder to write.
        calib: calibration images for the INT8 candidates (default: the quantizer's).
        min_mask_iou: a candidate passes when its mean mask IoU vs fp32 torch reaches this.
        backends: backends to consider (default: every installed one).
        candidates: candidate names to consider (e.g. ``["onnxruntime-fp32", "openvino-bf16"]``;
            default: all of ``backends``).
        budget_min: time budget in minutes; candidates not started when it runs out are skipped.
        max_rss_mb: reject candidates whose measured resident memory exceeds this (MiB).
        threads: intra-op threads (default: the usable CPUs).
        heldout: held-out images for the gate.
        prompts_per_image: generated prompts per held-out image.
        quick: smoke-test timing budget.
        work_dir: cache of exported bundles (see :func:`edgesam.bench.sources.prepare_source`).
        results_dir: bench history folder to append a row per measured candidate to (None: none).
        overwrite: replace an existing bundle folder (or empty folder) at ``out``; an existing
            ``out`` is otherwise an error.
        log: receives progress lines.
        show_progress: a tqdm bar over the candidates.

    Raises:
        FileExistsError: ``out`` exists and ``overwrite`` is False.
        ValueError: ``overwrite`` is True but ``out`` is neither a bundle folder nor an empty folder
            (nothing else is ever deleted).
        ValueError: bad arguments (unknown backend, threshold outside (0, 1], ...).
        DeployError: no candidate passes (nothing is written).
    """
    from edgesam.hardware import device_fingerprint, device_id
    from edgesam.bench.sources import prepare_source
    from edgesam.bundle.format import check_replaceable, publish_folder, write_metadata
    from edgesam.runtimes.registry import available_backends

    if not 0.0 < float(min_mask_iou) <= 1.0:
        raise ValueError(f"min_mask_iou must be in (0, 1], got {min_mask_iou}")
    if not budget_min > 0:
        raise ValueError(f"budget_min must be > 0, got {budget_min}")
    if threads is not None and int(threads) < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if calib is not None and not Path(calib).is_dir():
        raise FileNotFoundError(f"calibration folder {calib} does not exist")
    target = Path(out).absolute()
    check_replaceable(target, overwrite=overwrite)
    t0 = time.monotonic()
    deadline = t0 + 60.0 * float(budget_min)
    fp = device_fingerprint()
    cpu = fp.get("cpu") or {}
    usable = int(cpu.get("usable_cpus") or cpu.get("logical_cpus") or 1)
    threads = int(threads) if threads is not None else usable
    todo, skipped = plan_candidates(backends, available=available_backends(), cuda=_cuda(), isa=cpu.get("isa") or (),
                                    names=candidates)  # fmt: skip
    source = prepare_source(checkpoint=os.fspath(model), work_dir=work_dir, log=log)
    images, heldout_label = heldout_images(heldout, long_side=max(64, source.image_size))
    log(f"deploying {source.name} ({source.arch}, {source.image_size} px) with {threads} thread(s); "
        f"gate: mean mask IoU >= {min_mask_iou} vs fp32 torch on {heldout_label}")  # fmt: skip
    for spec, reason in skipped:
        log(f"skipping {spec.name}: {reason}")
    load_start = load_average()
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.deploy-", dir=target.parent))
    results: list[CandidateResult] = []
    old_threads = pin_torch_threads(threads)
    try:
        runner = _Runner(source, stage, images, threads, usable, calib, float(min_mask_iou), prompts_per_image,
                         quick, log)  # fmt: skip
        bar = _bar(len(todo), show_progress)
        say = (lambda m: bar.write(m)) if bar is not None else log
        runner.log = say
        for spec in todo:
            if time.monotonic() > deadline:
                results.append(CandidateResult(spec.name, spec.backend, spec.precision, options=dict(spec.options),
                                               reason=f"the time budget of {budget_min:g} min ran out"))  # fmt: skip
                say(f"skipping {spec.name}: the time budget of {budget_min:g} min ran out")
                continue
            if bar is not None:
                bar.set_description(spec.name)
            result = runner.run(spec)
            results.append(result)
            say(f"{spec.name}: {'measured' if result.status == 'passed' else result.status}"
                + (f" ({result.reason})" if result.reason else "")
                + (f", mask IoU {result.mask_iou:.4f}, first mask {result.p50():.1f} ms"
                   if result.mask_iou is not None and result.p50() is not None else ""))  # fmt: skip
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        results += [CandidateResult(s.name, s.backend, s.precision, options=dict(s.options), reason=r) for s, r in skipped]
        chosen = choose(results, min_mask_iou=float(min_mask_iou), max_rss_mb=max_rss_mb)
        log(candidate_table(results))
        if chosen is None:
            raise DeployError(f"no candidate reaches mean mask IoU {min_mask_iou} vs fp32 torch"
                              + (f" within {max_rss_mb:g} MiB" if max_rss_mb else "") + "; nothing was written. "
                              "Lower --min-iou, give calibration images (--calib) or a larger --budget-min.",
                              results)  # fmt: skip
        final = stage / "final"
        meta = _copy_bundle(Path(chosen.bundle), final)  # type: ignore[arg-type]
        record: dict[str, Any] = {
            "candidate": chosen.name, "backend": chosen.backend, "precision": chosen.precision,
            "options": chosen.options, "threads": threads, "device_id": device_id(fp), "device": fp,
            "latency_ms": chosen.latency_ms, "fidelity": chosen.fidelity, "rss_mb": chosen.rss_mb,
            "min_mask_iou": float(min_mask_iou), "max_rss_mb": max_rss_mb, "heldout": heldout_label,
            "calibration": None if calib is None else str(Path(calib).resolve()),
            "budget_min": float(budget_min), "seconds": round(time.monotonic() - t0, 1),
            "load_avg_1m_start": None if load_start is None else round(load_start, 2), "model": source.name, "arch": source.arch,
            "image_size": source.image_size, "quick": bool(quick),
            "candidates": [r.to_dict() for r in results],
        }  # fmt: skip
        write_deploy_report(final, record, results)
        write_plot(final, results, float(min_mask_iou))
        meta["deploy"] = record
        write_metadata(final, meta)
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} appeared while deploying; nothing was overwritten")
        publish_folder(final, target)
    finally:
        restore_torch_threads(old_threads)
        shutil.rmtree(stage, ignore_errors=True)
    history: list[Path] = []
    if results_dir is not None:
        from edgesam.bench.results import append_rows

        history = append_rows(results_dir, _history_rows(results, source, threads, quick, fp))
    log(f"chose {chosen.name}; wrote {target}")
    return DeployResult(target, chosen, results, record, history)


def _bar(total: int, show: bool) -> Any:
    if not show:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="deploy", unit="candidate", leave=False)

