"""The model a benchmark run measures: a checkpoint, an architecture, or a ready bundle.

`prepare_source` turns a checkpoint (MODEL) / ``--arch`` / a bundle folder (MODEL) into a `ModelSource`: the
torch weights (for the torch baseline) and a verified fp32 bundle, exported once and cached
under the work folder keyed by the checkpoint's sha256. `int8_bundle` makes (once) the INT8
bundle of a backend with ``edgesam.quantization.quantize_bundle`` and caches it next to the
fp32 bundle.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from edgesam.bundle import METADATA_FILE

__all__ = ["ModelSource", "default_work_dir", "file_sizes_mb", "gate_options", "int8_bundle", "prepare_source",
           "quantized_ops"]

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def _cached(folder: Path, log: Log, what: str) -> Any:
    """The bundle in `folder` when it is there and loads, else None (saying why it is not reused)."""
    from edgesam.export import BundleError, load_bundle

    if not (folder / METADATA_FILE).is_file():
        return None
    try:
        return load_bundle(folder)
    except BundleError as exc:
        log(f"cached {what} {folder} is unusable ({exc}); making it again")
        return None


def default_work_dir() -> Path:
    """``$EDGESAM_HOME/bench`` (default ``~/.cache/edgesam/bench``): cached benchmark bundles."""
    root = os.environ.get("EDGESAM_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "edgesam")
    return Path(root) / "bench"


@dataclass(frozen=True)
class ModelSource:
    """What is benchmarked.

    Attributes:
        name: short model label stored in every row, e.g. ``"edgesam-demo"``, ``"mobile_sam"``,
            ``"random"`` (architecture with random weights), or the bundle folder name.
        arch: architecture name.
        image_size: encoder input side S.
        bundle: the fp32 bundle folder.
        checkpoint: torch weights (None for a bundle: no torch baseline then).
        random_weights: True when built from ``--arch`` (masks are near-threshold noise).
    """

    name: str
    arch: str
    image_size: int
    bundle: Path
    checkpoint: Path | None = None
    random_weights: bool = False


def _random_checkpoint(arch: str, image_size: int | None, work_dir: Path, log: Log) -> Path:
    """Seeded random weights of `arch` saved once as safetensors (identical on every run)."""
    import torch
    from safetensors.torch import save_file

    from edgesam.models.registry import build_sam, get_spec

    size = int(image_size or get_spec(arch).image_size)
    path = work_dir / f"{arch}-{size}px-random-seed0" / "model.safetensors"
    if path.is_file():
        return path
    log(f"building {arch} at {size} px with random weights (seed 0) -> {path}")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_sam(arch, image_size=size)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(state, str(tmp), metadata={"arch": arch, "image_size": str(size), "format": "pt"})
    os.replace(tmp, path)
    return path


def _resolve_checkpoint(text: str) -> tuple[Path, str]:
    """File path and short name of a checkpoint MODEL (a file or a zoo / embedded name)."""
    from edgesam.bundle.catalogue import list_models, resolve

    path = Path(text)
    if path.is_file():
        return path, path.stem
    if text in list_models():
        return resolve(text), text
    raise FileNotFoundError(f"checkpoint {text!r} is neither a file nor a known model name "
                            f"(known: {', '.join(list_models())})")


def _export_cached(checkpoint: Path, name: str, work_dir: Path, log: Log) -> tuple[Path, str, int]:
    """The fp32 bundle of `checkpoint` under `work_dir`, exported on first use."""
    from edgesam.export import export_bundle, load_bundle
    from edgesam.bundle import sha256_file
    from edgesam.bundle.io_spec import DECODER_GRAPH

    folder = work_dir / f"{name}-{sha256_file(checkpoint)[:12]}" / "fp32"
    bundle = _cached(folder, log, "bundle")
    if bundle is not None and bundle.metadata.get("decoder_graph") == DECODER_GRAPH:
        return folder, bundle.arch, bundle.image_size
    if bundle is not None:
        log(f"cached bundle {folder} has an older decoder graph; exporting again")

    log(f"exporting {checkpoint} -> {folder} (once; later runs reuse it)")
    export_bundle(checkpoint, folder, overwrite=True)
    bundle = load_bundle(folder)
    return folder, bundle.arch, bundle.image_size


def prepare_source(*, bundle: str | os.PathLike[str] | None = None,
                   checkpoint: str | os.PathLike[str] | None = None, arch: str | None = None,
                   image_size: int | None = None, work_dir: str | os.PathLike[str] | None = None,
                   log: Log = _quiet) -> ModelSource:
    """Resolve exactly one of `bundle`, `checkpoint`, `arch` into a `ModelSource`.

    Args:
        bundle: an existing fp32 bundle folder (no torch weights: no torch baseline).
        checkpoint: a checkpoint file or a name from ``edgesam models``.
        arch: an architecture name; seeded random weights are used.
        image_size: input side for `arch` (default: the architecture's).
        work_dir: where exported bundles and random weights are cached (`default_work_dir`).

    Raises:
        ValueError: not exactly one source, unknown arch, or a bundle that is not fp32.
        FileNotFoundError: a checkpoint that is neither a file nor a cached/known model.
    """
    given = [x for x in (bundle, checkpoint, arch) if x is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of bundle=, checkpoint=, arch=")
    work = Path(work_dir) if work_dir is not None else default_work_dir()
    if bundle is not None:
        from edgesam.export import load_bundle

        loaded = load_bundle(bundle)
        if loaded.precision != "fp32":
            raise ValueError(f"{bundle} is a {loaded.precision} bundle; give the fp32 bundle "
                             "(the benchmark makes the INT8 bundles itself)")
        return ModelSource(name=loaded.root.name, arch=loaded.arch, image_size=loaded.image_size,
                           bundle=loaded.root)
    if arch is not None:
        path = _random_checkpoint(str(arch), image_size, work, log)
        folder, got_arch, size = _export_cached(path, f"{arch}-random", work, log)
        return ModelSource(name="random", arch=got_arch, image_size=size, bundle=folder,
                           checkpoint=path, random_weights=True)
    path, name = _resolve_checkpoint(os.fspath(checkpoint))  # type: ignore[arg-type]
    folder, got_arch, size = _export_cached(path, name, work, log)
    return ModelSource(name=name, arch=got_arch, image_size=size, bundle=folder, checkpoint=path)


_FAILED: dict[tuple[Path, str], Exception] = {}  # quantizations that failed in this process


def gate_options(source: ModelSource) -> dict[str, Any]:
    """``quantize_bundle`` keywords for `source`: the accuracy gate is off for random weights
    (their masks hover at the threshold, so the gate could only reject them); otherwise the
    defaults, which users get from ``edgesam quantize``."""
    return {"gate": False, "search": False} if source.random_weights else {}


def _metadata_key(bundle: Path) -> str:
    return hashlib.sha256((bundle / METADATA_FILE).read_bytes()).hexdigest()[:8]


def int8_bundle(source: Path, backend: str, *, work_dir: str | os.PathLike[str] | None = None,
                log: Log = _quiet, **quantize_options: Any) -> Path:
    """The INT8 bundle of `source` for `backend`, quantized on first use.

    Cached next to the fp32 bundle as ``<bundle>.int8-<backend>-<metadata hash>`` (or under
    `work_dir` when that folder is not writable), so a re-exported fp32 bundle is quantized
    again. Extra keywords go to ``quantize_bundle``.
    """
    name = f"{source.name}.int8-{backend}-{_metadata_key(source)}"
    beside = source.parent / name
    fallback = (Path(work_dir) if work_dir is not None else default_work_dir()) / "int8" / name
    for folder in (beside, fallback):
        if _cached(folder, log, "INT8 bundle") is not None:
            return folder
    target = beside if os.access(source.parent, os.W_OK) else fallback
    attempt = (target, json.dumps(quantize_options, sort_keys=True, default=str))
    if attempt in _FAILED:  # tried in this process already: do not spend the time twice
        raise _FAILED[attempt]
    from edgesam.quantization import quantize_bundle

    log(f"quantizing {source.name} for {backend} -> {target} (once; later runs reuse it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        quantize_bundle(source, target, backend=backend, log=lambda msg: log(f"  {msg}"),
                        **quantize_options)
    except Exception as exc:
        _FAILED[attempt] = exc
        raise
    return target


def quantized_ops(bundle: Path) -> dict[str, float]:
    """How much of a quantized bundle's encoder really runs in INT8.

    Returns ``{"encoder_int8_ops", "encoder_float_ops"}`` from the bundle's quantization
    record (quantized nodes / FakeQuantize ops, and quantizable ops kept in float by the
    recipe or by the accuracy search), or ``{}`` for an unquantized bundle.
    """
    meta = json.loads((bundle / METADATA_FILE).read_text(encoding="utf-8"))
    graph = ((meta.get("quantization") or {}).get("graphs") or {}).get("encoder") or {}
    int8 = graph.get("quantized_nodes", graph.get("fake_quantize_ops"))
    kept = graph.get("float_nodes")
    if int8 is None:
        return {}
    out = {"encoder_int8_ops": float(int8)}
    if kept is not None:
        out["encoder_float_ops"] = float(len(kept) if isinstance(kept, list) else kept)
    return out


def file_sizes_mb(bundle: Path) -> dict[str, float]:
    """Size in MiB of what a runtime loads from a bundle: the encoder and decoder model files
    with their data files (``encoder.onnx`` + ``encoder.onnx.data``, ``encoder.xml`` + ``.bin``).

    Returns ``{"encoder_mb", "decoder_mb", "model_mb"}`` (``model_mb`` = their sum).
    """
    meta = json.loads((bundle / METADATA_FILE).read_text(encoding="utf-8"))
    files: dict[str, str] = meta.get("files", {})
    models: dict[str, str] = meta.get("models", {})
    out: dict[str, float] = {}
    for role in ("encoder", "decoder"):
        main = models.get(role)
        if not main:
            continue
        stem = Path(main).name.split(".")[0]
        parts = [f for f in files if Path(f).name.split(".")[0] == stem]
        out[f"{role}_mb"] = sum((bundle / f).stat().st_size for f in parts) / 2**20
    out["model_mb"] = sum(out.values())
    return out
