"""``quantize_bundle``: fp32 bundle in, gated INT8 bundle out.

Steps: validate the source bundle (fp32, intact), build the calibration and held-out image
sets, quantize the encoder (and the decoder if the recipe says so) with the backend's
engine, write a complete bundle into a temporary sibling folder, run the accuracy gate
against the fp32 bundle, search for layers to keep in float if the gate fails, record the
recipe and the accuracy report in ``edgesam.json``, and only then rename the folder into
place. A failure or an interruption removes the temporary folder: ``out_dir`` either holds a
complete, gated bundle or is left as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from edgesam.export.bundle import METADATA_FILE, Bundle, BundleError, load_bundle, publish_folder, write_metadata
from edgesam.quantization.accuracy import DEFAULT_MIN_IOU, AccuracyGateError, AccuracyReport, compare_predictors
from edgesam.quantization.calibration import CalibrationSet
from edgesam.quantization.engines import GraphJob, QuantEngine, make_engine
from edgesam.quantization.recipes import QuantRecipe, default_recipe, get_recipe

__all__ = ["AlreadyQuantizedError", "QuantizeResult", "quantize_bundle"]


class AlreadyQuantizedError(BundleError):
    """The source bundle is already quantized (quantize the fp32 bundle instead)."""


@dataclass(frozen=True)
class QuantizeResult:
    """The written bundle folder and its accuracy report."""

    path: Path
    report: AccuracyReport


def _recipe(backend: str, recipe: str | QuantRecipe | None) -> QuantRecipe:
    chosen = default_recipe(backend) if recipe is None else recipe if isinstance(recipe, QuantRecipe) else get_recipe(recipe)
    if chosen.backend != backend:
        raise ValueError(f"recipe {chosen.name!r} is for backend {chosen.backend!r}, not {backend!r}")
    return chosen


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
    n_cal, n_held = recipe.calibration_images, recipe.heldout_images
    if calib_dir is None:
        calib = CalibrationSet.from_samples(n_cal, seed=seed, **pre)
        held = CalibrationSet.from_samples(n_held, seed=seed + 10_000, **pre)
        return calib, held, {"source": "package samples", "images": n_cal, "heldout": n_held}
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
        self.write(folder, models, None)
        return folder

    def write(self, folder: Path, models: dict[str, str] | None, report: AccuracyReport | None) -> None:
        meta = {k: v for k, v in self.source.metadata.items() if k not in ("format", "format_version", "files")}
        if models is None:
            models = load_bundle(folder, check_hashes=False).metadata["models"]
        graphs = {j.role: dict(j.summary) for j in self.jobs}
        meta.update(models=models, precision="int8", quantization={
            "backend": self.engine.backend, "runs_on": list(self.engine.runs_on),
            "recipe": self.engine.recipe.to_dict(), "calibration": self.info, "graphs": graphs,
            "source": {"arch": self.source.arch, "encoder_sha256": self.source.sha256("encoder"),
                       "decoder_sha256": self.source.sha256("decoder")},
            "accuracy": report.to_dict() if report else None,
        })  # fmt: skip
        (folder / METADATA_FILE).unlink(missing_ok=True)
        write_metadata(folder, meta)


def quantize_bundle(
    bundle_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    backend: str,
    calib_dir: str | os.PathLike[str] | None = None,
    recipe: str | QuantRecipe | None = None,
    min_mask_iou: float = DEFAULT_MIN_IOU,
    gate: bool = True,
    search: bool = True,
    overwrite: bool = False,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> QuantizeResult:
    """Quantize the fp32 bundle ``bundle_dir`` for ``backend`` into ``out_dir``.

    Args:
        bundle_dir: an fp32 bundle (``edgesam export``).
        out_dir: the quantized bundle folder to create.
        backend: ``"onnxruntime"``, ``"openvino"`` or ``"tensorrt"``.
        calib_dir: folder of calibration images (any jpg/png, any size or mode); the last
            few are held out for the gate. Default: the package's sample images.
        recipe: a recipe name (see :data:`edgesam.quantization.recipes.RECIPES`), a
            :class:`QuantRecipe`, or None for the backend's default.
        min_mask_iou: the gate's threshold on the mean mask IoU vs fp32.
        gate: enforce the threshold (False: measure and record only).
        search: when the gate fails, keep the most sensitive layers in float until it passes.
        overwrite: replace an existing ``out_dir``.
        seed: sample-image and prompt seed.
        log: receives progress lines (e.g. ``print``).

    Returns:
        :class:`QuantizeResult` with the bundle path and the accuracy report (also stored
        under ``quantization.accuracy`` in the bundle's ``edgesam.json``).

    Raises:
        AlreadyQuantizedError: the source bundle is not fp32.
        BackendUnavailableError: the backend's quantization toolchain is not installed.
        CalibrationError: the calibration folder is missing, empty or unreadable.
        AccuracyGateError: the gate failed (after the search) and ``gate`` is True.
        FileExistsError: ``out_dir`` exists and ``overwrite`` is False.
    """
    say = log or (lambda _msg: None)
    chosen = _recipe(backend, recipe)
    engine = make_engine(backend, chosen)
    source = _source(bundle_dir)
    out = Path(out_dir).absolute()
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    if out == source.root or source.root in out.parents:
        raise ValueError(f"write the quantized bundle outside the source bundle {source.root}")
    calib, held, info = _image_sets(source, calib_dir, chosen, seed)
    stage = _new_temp(out)
    try:
        say(f"calibrating on {len(calib)} image(s) ({info['source']}), gate on {len(held)} held-out image(s)")
        reference = engine.reference(source.root)
        jobs = [GraphJob("encoder", source.path("encoder"), list(calib), stage / "work-encoder")]
        if chosen.quantize_decoder:
            feeds = calib.decoder_feeds(reference.encode, prompts_per_image=chosen.prompts_per_image, seed=seed)
            jobs.append(GraphJob("decoder", source.path("decoder"), feeds, stage / "work-decoder"))
        run = _Run(source, engine, jobs, stage, info)

        def measure(folder: Path) -> AccuracyReport:
            candidate, runtime = engine.candidate(folder)
            report = compare_predictors(reference, candidate, held, prompts_per_image=chosen.prompts_per_image,
                                        min_mask_iou=min_mask_iou, seed=seed + 1)  # fmt: skip
            info["gate_runtime"] = runtime
            return report

        say(f"quantizing with recipe {chosen.name!r} ({chosen.description})")
        folder = run.build()
        report = measure(folder)
        say(f"gate: {report.summary()}")
        if not report.passed and search:
            say("searching for the layers to keep in float")
            ranking = sorted(((f"{j.role}:{name}", score) for j in jobs for name, score in engine.rank(j)),
                             key=lambda kv: kv[1], reverse=True)  # fmt: skip
            from edgesam.quantization.sensitivity import search_float_layers

            folder, report = search_float_layers(ranking, run.build, measure, on_step=lambda m: say(f"  {m}"))
            say(f"gate after search: {report.summary()}")
        if gate and not report.passed:
            raise AccuracyGateError(
                f"quantized model fails the accuracy gate: {report.summary()}. Try another recipe "
                f"(--recipe), more representative calibration images (--calib), or lower the threshold "
                f"(--min-iou / --no-gate)", report)  # fmt: skip
        run.write(folder, None, report)
        final = stage / "final"
        os.replace(folder, final)
        _publish(final, out, overwrite)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    say(f"wrote {out}")
    return QuantizeResult(out, report)
