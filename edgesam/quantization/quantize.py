"""``quantize_bundle``: fp32 bundle in, gated INT8 bundle out.

Steps: validate the source bundle (fp32, intact); build the calibration and held-out image
sets (the user's folder, else public-domain photos mixed with synthetic scenes); quantize the
encoder (and the decoder if the recipe says so) with each candidate recipe; gate each
against the fp32 bundle with the float parts at each precision the backend offers (bf16
first where it runs); when none passes, keep the fewest layers out of INT8
(:mod:`edgesam.quantization.search`); time the result against the fp32 bundle on the same
backend; record everything in ``edgesam.json``, and only then rename the folder into place.
A failure or an interruption removes the temporary folder: ``out_dir`` either holds a
complete, gated bundle or is left as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from edgesam.bundle.format import (
    METADATA_FILE, Bundle, BundleError, check_replaceable, load_bundle, publish_folder, write_metadata,
)  # fmt: skip
from edgesam.quantization.accuracy import DEFAULT_MIN_IOU, AccuracyGateError, AccuracyReport, compare_predictors
from edgesam.quantization.calibration import CalibrationSet
from edgesam.quantization.engines import GraphJob, QuantEngine, make_engine
from edgesam.quantization.recipes import SEARCH_RECIPES, QuantRecipe, default_recipe, get_recipe
from edgesam.quantization.speed import SpeedReport, compare_speed

__all__ = ["AlreadyQuantizedError", "NotFasterError", "QuantizeResult", "quantize_bundle"]

class AlreadyQuantizedError(BundleError):
    """The source bundle is already quantized (quantize the fp32 bundle instead)."""


class NotFasterError(RuntimeError):
    """The quantized bundle passed the gate but is not measurably faster than the fp32 bundle."""

    def __init__(self, message: str, speed: SpeedReport, int8_ops: tuple[int, int]) -> None:
        super().__init__(message)
        self.speed, self.int8_ops = speed, int8_ops


@dataclass(frozen=True)
class QuantizeResult:
    """The written bundle folder and what was measured.

    Attributes:
        path: the bundle folder.
        report: the accuracy report (gate).
        speed: encoder latency against the fp32 bundle on the same backend (None if not measured).
        int8_ops: ``(INT8, total)`` convolutions and matrix products of the encoder.
        float_precision: precision of the float parts, as gated (``"fp32"`` or ``"bf16"``).
        recipe: the recipe chosen.
    """

    path: Path
    report: AccuracyReport
    speed: SpeedReport | None = None
    int8_ops: tuple[int, int] = (0, 0)
    float_precision: str = "fp32"
    recipe: str = ""

    def summary(self) -> str:
        """Lines for the command line: ops in INT8, kept layers, the gate, the speed."""
        done, total = self.int8_ops
        lines = [f"{done} of {total} encoder ops INT8 (recipe {self.recipe}, float parts in {self.float_precision})"]
        if done == 0:
            lines[0] += ": NOTHING IS QUANTIZED"
        if self.report.kept_float:
            names = ", ".join(k.split(":", 1)[1] for k in self.report.kept_float[:6])
            more = f" and {len(self.report.kept_float) - 6} more" if len(self.report.kept_float) > 6 else ""
            lines.append(f"kept out of INT8 ({self.float_precision}): {names}{more}")
        lines.append(self.report.summary())
        if self.speed is not None:
            lines.append(self.speed.summary())
        return "\n".join(lines)


def _recipes(backend: str, recipe: Any) -> list[QuantRecipe]:
    if isinstance(recipe, (list, tuple)):
        return [r for item in recipe for r in _recipes(backend, item)]
    if recipe == "auto":
        return [get_recipe(name) for name in SEARCH_RECIPES[backend]] if backend in SEARCH_RECIPES else [default_recipe(backend)]
    chosen = default_recipe(backend) if recipe is None else recipe if isinstance(recipe, QuantRecipe) else get_recipe(recipe)
    if chosen.backend != backend:
        raise ValueError(f"recipe {chosen.name!r} is for backend {chosen.backend!r}, not {backend!r}")
    return [chosen]


def _source(bundle_dir: str | os.PathLike[str]) -> Bundle:
    bundle = load_bundle(bundle_dir)
    if bundle.precision != "fp32" or bundle.metadata.get("quantization"):
        how = (bundle.metadata.get("quantization") or {}).get("recipe", {}).get("name", bundle.precision)
        raise AlreadyQuantizedError(
            f"bundle {bundle.root} is already quantized ({how}); quantize its fp32 original instead "
            "(quantizing twice compounds the error and the gate would compare against the wrong reference)"
        )
    return bundle


def _image_sets(bundle: Bundle, calib_dir: Any, recipe: QuantRecipe, seed: int) -> tuple[CalibrationSet, CalibrationSet, dict[str, Any]]:
    pre = dict(image_size=bundle.image_size, pixel_mean=bundle.pixel_mean, pixel_std=bundle.pixel_std)
    n_cal, n_held = recipe.calibration.images, recipe.accuracy.heldout_images
    if calib_dir is None:
        from edgesam.quantization.photos import default_image_sets

        return default_image_sets(n_cal, n_held, seed=seed, **pre)  # type: ignore[return-value]
    everything = CalibrationSet.from_folder(calib_dir, limit=n_cal + n_held, **pre)
    n = len(everything)
    if n == 1:
        info = {"source": str(Path(calib_dir).resolve()), "images": 1, "heldout": 1, "heldout_is_calibration": True}
        return everything, everything, info
    held_count = min(n_held, max(1, n // 3))
    calib, held = everything.subset(0, n - held_count), everything.subset(n - held_count)
    return calib, held, {"source": str(Path(calib_dir).resolve()), "images": len(calib), "heldout": len(held)}


def _new_temp(out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))


def _publish(tmp: Path, out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} appeared while quantizing; nothing was overwritten")
    publish_folder(tmp, out)


class _Run:
    """State of one quantization: the engine, the jobs and the staging folder."""

    def __init__(self, source: Bundle, engine: QuantEngine, jobs: list[GraphJob], stage: Path, info: dict[str, Any]) -> None:
        self.source, self.engine, self.jobs, self.stage, self.info = source, engine, jobs, stage, info
        self.extra: dict[str, Any] = {}
        self.summaries: dict[Path, dict[str, dict[str, Any]]] = {}  # folder -> role -> graph summary

    def int8_ops(self, folder: Path) -> tuple[int, int]:
        """``(INT8, total)`` convolutions and matrix products of the encoder built into ``folder``."""
        summary = self.summaries.get(folder, {}).get("encoder", {})
        return int(summary.get("int8_ops", 0)), int(summary.get("compute_ops", 0))

    def build(self, kept: tuple[str, ...] = ()) -> Path:
        """Quantize every job into a fresh bundle folder (``kept``: ``role:node`` names in float)."""
        folder = self.stage / f"bundle-{len(list(self.stage.glob('bundle-*')))}"
        folder.mkdir()
        models = dict(self.source.metadata["models"])
        roles = {job.role for job in self.jobs}
        for role, name in models.items():
            if name and role not in roles:
                shutil.copy2(self.source.root / name, folder / name)
        for job in self.jobs:
            names = self.engine.file_names(job.role)
            self.engine.quantize(job, folder, [k.split(":", 1)[1] for k in kept if k.startswith(f"{job.role}:")])
            models[job.role] = names[0]
        self.summaries[folder] = {j.role: dict(j.summary) for j in self.jobs}
        self.write(folder, models, None)
        return folder

    def write(self, folder: Path, models: dict[str, str] | None, report: AccuracyReport | None) -> None:
        meta = {k: v for k, v in self.source.metadata.items() if k not in ("format", "format_version", "files")}
        if models is None:
            models = load_bundle(folder, check_hashes=False).metadata["models"]
        graphs = self.summaries.get(folder) or {j.role: dict(j.summary) for j in self.jobs}
        meta.update(models=models, precision="int8", quantization={
            "backend": self.engine.backend, "runs_on": list(self.engine.runs_on),
            "recipe": self.engine.recipe.to_dict(), "calibration": self.info, "graphs": graphs,
            "source": {"arch": self.source.arch, "encoder_sha256": self.source.sha256("encoder"),
                       "decoder_sha256": self.source.sha256("decoder")},
            "accuracy": report.to_dict() if report else None, **self.extra,
        })  # fmt: skip
        (folder / METADATA_FILE).unlink(missing_ok=True)
        write_metadata(folder, meta)


def quantize_bundle(
    bundle_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    backend: str,
    calib_dir: str | os.PathLike[str] | None = None,
    recipe: str | QuantRecipe | Sequence[str | QuantRecipe] | None = None,
    min_mask_iou: float = DEFAULT_MIN_IOU,
    gate: bool = True,
    search: bool = True,
    overwrite: bool = False,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    measure_speed: bool = True,
    require_faster: bool = False,
    speed_rounds: int = 5,
    exclude_patterns: tuple[str, ...] = (),
) -> QuantizeResult:
    """Quantize the fp32 bundle ``bundle_dir`` for ``backend`` into ``out_dir``.

    Args:
        bundle_dir: an fp32 bundle (``edgesam export``).
        out_dir: the quantized bundle folder to create.
        backend: ``"onnxruntime"``, ``"openvino"`` or ``"tensorrt"``.
        calib_dir: folder of calibration images (any jpg/png, any size or mode); the last
            few are held out for the gate. Default: public-domain photos from scikit-image
            mixed with synthetic scenes (synthetic scenes only without scikit-image).
        recipe: a recipe name (see :data:`edgesam.quantization.recipes.RECIPES`), a
            :class:`QuantRecipe`, ``"auto"`` (try :data:`~edgesam.quantization.recipes.SEARCH_RECIPES`,
            keep the fastest that passes the gate), a list of these (all tried, the same way)
            or None for the backend's default.
        min_mask_iou: the gate's threshold on the mean mask IoU vs fp32.
        gate: enforce the threshold (False: measure and record only).
        search: when the gate fails, keep the fewest sensitive layers out of INT8 that pass.
        overwrite: replace an existing bundle folder (or empty folder) at ``out_dir``; an existing
            ``out_dir`` is otherwise an error.
        seed: sample-image and prompt seed.
        log: receives progress lines (e.g. ``print``).
        measure_speed: time the result against the fp32 bundle on the same backend.
        require_faster: raise :class:`NotFasterError` (writing nothing) unless the result is
            measurably faster than the fp32 bundle.
        speed_rounds: timed encoder calls per model for the speed report.
        exclude_patterns: regular expressions of node names kept out of INT8 by every recipe tried.

    Returns:
        :class:`QuantizeResult`; the same figures are stored under ``quantization`` in the
        bundle's ``edgesam.json`` (``accuracy``, ``speed``, ``float_precision``,
        ``graphs.encoder.int8_ops``/``compute_ops``, ``calibration``, ``recipe_search``).

    Raises:
        AlreadyQuantizedError: the source bundle is not fp32.
        BackendUnavailableError: the backend's quantization toolchain is not installed.
        CalibrationError: the calibration folder is missing, empty or unreadable.
        AccuracyGateError: the gate failed (after the search) and ``gate`` is True.
        NotFasterError: ``require_faster`` and the result is not measurably faster.
        FileExistsError: ``out_dir`` exists and ``overwrite`` is False.
        ValueError: ``overwrite`` is True but ``out_dir`` is neither a bundle folder nor an empty folder
            (nothing else is ever deleted).
    """
    say = log or (lambda _msg: None)
    recipes = [r.replace(exclude_patterns=(*r.quantization.exclude_patterns, *exclude_patterns)) if exclude_patterns else r
               for r in _recipes(backend, recipe)]  # fmt: skip
    engines = [make_engine(backend, r) for r in recipes]
    source = _source(bundle_dir)
    out = Path(out_dir).absolute()
    check_replaceable(out, overwrite=overwrite)
    if out == source.root or source.root in out.parents:
        raise ValueError(f"write the quantized bundle outside the source bundle {source.root}")
    calib, held, info = _image_sets(source, calib_dir, recipes[0], seed)
    stage = _new_temp(out)
    try:
        say(_calibration_line(calib, held, info))
        reference = engines[0].reference(source.root)
        runs = [_make_run(source, e, calib, stage, info, reference, seed) for e in engines]
        chosen, tried = _pick_recipe(runs, held, reference, min_mask_iou, seed, say)
        run, folder, report, precision = chosen
        if not report.passed and search:
            run, folder, report, precision = _layer_search(run, held, reference, min_mask_iou, seed, say)
        speed = None
        if measure_speed or require_faster:
            candidate, _ = run.engine.candidate(folder, precision)
            speed = compare_speed(reference, candidate, label=run.engine.reference_label(), rounds=speed_rounds)
        result = QuantizeResult(out, report, speed, run.int8_ops(folder), precision, run.engine.recipe.name)
        if gate and not report.passed:
            raise AccuracyGateError(
                f"quantized model fails the accuracy gate: {report.summary()}. Try another recipe "
                f"(--recipe), more representative calibration images (--calib), or lower the threshold "
                f"(--min-iou / --no-gate)", report)  # fmt: skip
        if require_faster and (speed is None or not speed.faster or result.int8_ops[0] == 0):
            what = "nothing is quantized" if result.int8_ops[0] == 0 else "it is not measurably faster"
            raise NotFasterError(f"the INT8 bundle passes the gate but {what}: {result.int8_ops[0]} of "
                                 f"{result.int8_ops[1]} encoder ops INT8; " + (speed.summary() if speed else "speed not measured"),
                                 speed, result.int8_ops)  # type: ignore[arg-type]  # fmt: skip
        run.extra = {"float_precision": precision, "speed": speed.to_dict() if speed else None, "recipe_search": tried}
        run.write(folder, None, report)
        final = stage / "final"
        os.replace(folder, final)
        _publish(final, out, overwrite)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    say(f"wrote {out}")
    return result


def _calibration_line(calib: CalibrationSet, held: CalibrationSet, info: dict[str, Any]) -> str:
    if info["source"] == "photos+samples":
        what = (f"{info['calibration_photos']} public-domain photos (scikit-image) + {len(calib) - info['calibration_photos']} "
                f"synthetic scenes; gate on {info['heldout_photos']} other photo(s) + {len(held) - info['heldout_photos']} scene(s)")  # fmt: skip
    elif info["source"] == "package samples":
        what = (f"{len(calib)} synthetic scenes, gate on {len(held)} more (scikit-image is not installed, so no photos: "
                "pip install scikit-image)")  # fmt: skip
    else:
        return f"calibrating on {len(calib)} image(s) of {info['source']}, gate on {len(held)} held-out image(s)"
    return f"calibrating on {what}; your own images (--calib DIR) are better"


def _make_run(source: Bundle, engine: QuantEngine, calib: CalibrationSet, stage: Path, info: dict[str, Any],
              reference: Any, seed: int) -> _Run:  # fmt: skip
    r = engine.recipe
    work = stage / f"work-{r.name}"
    jobs = [GraphJob("encoder", source.path("encoder"), list(calib), work / "encoder")]
    if r.quantization.quantize_decoder:
        feeds = calib.decoder_feeds(reference.encode, prompts_per_image=r.calibration.prompts_per_image, seed=seed)
        jobs.append(GraphJob("decoder", source.path("decoder"), feeds, work / "decoder"))
    return _Run(source, engine, jobs, stage, info)


def _gate(run: _Run, folder: Path, precision: str, held: CalibrationSet, reference: Any, min_iou: float, seed: int) -> AccuracyReport:
    candidate, runtime = run.engine.candidate(folder, precision)
    run.info["gate_runtime"] = runtime
    return compare_predictors(reference, candidate, held, prompts_per_image=run.engine.recipe.accuracy.prompts_per_image,
                              min_mask_iou=min_iou, seed=seed + 1)  # fmt: skip


def _pick_recipe(runs: list[_Run], held: CalibrationSet, reference: Any, min_iou: float, seed: int,
                 say: Callable[[str], None]) -> tuple[tuple[_Run, Path, AccuracyReport, str], list[dict[str, Any]]]:  # fmt: skip
    """Build and gate every recipe (each float precision, preferred first); the fastest passing one wins."""
    tried: list[dict[str, Any]] = []
    results = []
    for i, run in enumerate(runs, 1):
        r = run.engine.recipe
        say(f"[{i}/{len(runs)}] quantizing with recipe {r.name!r} ({r.description}) ...")
        folder = run.build()
        best = None
        for precision in run.engine.float_precisions():
            report = _gate(run, folder, precision, held, reference, min_iou, seed)
            say(f"      gate ({precision} float parts): {report.summary()}")
            if best is None or report.passed or report.mask_iou_mean > best[2].mask_iou_mean:
                best = (run, folder, report, precision)
            if report.passed:
                break
        assert best is not None
        entry = {"recipe": r.name, "float_precision": best[3], "passed": best[2].passed, "int8_ops": run.int8_ops(folder)[0],
                 "mask_iou_mean": best[2].mask_iou_mean, "embedding_cosine_mean": best[2].embedding_cosine_mean}  # fmt: skip
        if best[2].passed and len(runs) > 1:
            candidate, _ = run.engine.candidate(folder, best[3])
            entry["speed"] = compare_speed(reference, candidate, label=run.engine.reference_label(), rounds=3,
                                           min_seconds=0.25).to_dict()
            say(f"      {entry['speed']['candidate_ms']:.0f} ms vs fp32 {entry['speed']['reference_ms']:.0f} ms")
        tried.append(entry)
        results.append((best, entry))
    passing = [(b, e) for b, e in results if b[2].passed]
    if passing:
        pick = max(passing, key=lambda be: be[1].get("speed", {}).get("speedup", 0.0))[0]
    else:
        pick = max((b for b, _ in results), key=lambda b: b[2].mask_iou_mean)
    if len(runs) > 1:
        say(f"recipe {pick[0].engine.recipe.name!r} chosen ({'fastest that passes' if passing else 'closest to the gate'})")
    return pick, tried


def _layer_search(run: _Run, held: CalibrationSet, reference: Any, min_iou: float, seed: int,
                  say: Callable[[str], None]) -> tuple[_Run, Path, AccuracyReport, str]:  # fmt: skip
    """Keep the fewest layers out of INT8 that pass the gate (see :mod:`edgesam.quantization.search`)."""
    from edgesam.quantization.search import fewest_float_layers

    say("ranking layers by measured sensitivity, then keeping the fewest out of INT8 that pass the gate")
    ranking = sorted(((f"{j.role}:{name}", score) for j in run.jobs for name, score in run.engine.rank(j)),
                     key=lambda kv: kv[1], reverse=True)  # fmt: skip

    def timer(folder: Path, precision: str) -> float:
        candidate, _ = run.engine.candidate(folder, precision)
        return compare_speed(reference, candidate, label="", rounds=2, min_seconds=0.25).candidate_ms

    probe, _ = fewest_float_layers(
        ranking, run.build, lambda f, p: _gate(run, f, p, held, reference, min_iou, seed),
        precisions=run.engine.float_precisions(), timer=timer, on_step=lambda m: say(f"  {m}"))  # fmt: skip
    say(f"gate after search: {probe.report.summary()}")
    return run, probe.candidate, probe.report, probe.precision
