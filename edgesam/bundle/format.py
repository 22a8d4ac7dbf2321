"""Bundle folders: ONNX files + ``edgesam.json`` (:data:`METADATA_FILE`), written by the exporter, read by the runtimes.

Layout::

    <bundle>/
      edgesam.json         metadata (below)
      encoder.onnx         image [1,3,S,S] -> image_embeddings [1,256,S/16,S/16]
      decoder.onnx         edgesam decoder (see edgesam.export.wrappers.DecoderOnnx)
      decoder_sam.onnx     optional: segment_anything's official decoder interface
      golden.npz           verification inputs and torch reference outputs
      *.onnx.data          optional external tensor data (models over 2 GB)

``edgesam.json`` keys: ``format`` ("edgesam-bundle"), ``format_version``, ``arch``,
``image_size``, ``pixel_mean``/``pixel_std`` (RGB, 0..255 scale), ``mask_threshold``, ``opset``,
``precision`` ("fp32", "fp16", "int8"), ``quantization`` (recipe dict or null), ``edgesam_version``,
``models`` (role -> file name: ``encoder``, ``decoder``, optionally ``decoder_sam``, ``golden``),
``files`` (file name -> sha256 of every file in the bundle) and ``verification`` (the
tolerance the export was checked to and the measured errors). Extra keys are kept.

This module needs only the standard library and numpy (it imports nothing else of edgesam):
runtimes call :func:`load_bundle` without torch or onnx installed. Files not listed in ``files`` (runtime caches such as
``openvino_cache/``) are ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .onnx_refs import OnnxParseError, external_data_locations

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_FORMAT_VERSION",
    "GOLDEN_FILE",
    "METADATA_FILE",
    "PRECISIONS",
    "Bundle",
    "BundleError",
    "BundleIntegrityError",
    "load_bundle",
    "check_replaceable",
    "publish_folder",
    "sha256_file",
    "write_metadata",
]

BUNDLE_FORMAT = "edgesam-bundle"
BUNDLE_FORMAT_VERSION = 1
METADATA_FILE = "edgesam.json"
GOLDEN_FILE = "golden.npz"  # see edgesam.bundle.golden
PRECISIONS = ("fp32", "fp16", "int8")
_REEXPORT = "Re-export it with `edgesam export CHECKPOINT -o DIR` (or edgesam.export.export_bundle)."


class BundleError(ValueError):
    """A bundle folder is missing, incomplete or has invalid metadata."""


class BundleIntegrityError(BundleError):
    """A bundle file differs from the one recorded at export (sha256 mismatch) or escapes the folder."""


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Bundle:
    """A validated bundle folder.

    Attributes:
        root: the folder (absolute, symlinks resolved).
        metadata: the parsed ``edgesam.json``.
    """

    root: Path
    metadata: Mapping[str, Any] = field(repr=False)

    @property
    def arch(self) -> str:
        return str(self.metadata["arch"])

    @property
    def image_size(self) -> int:
        return int(self.metadata["image_size"])

    @property
    def pixel_mean(self) -> np.ndarray:
        """float32 ``(3,)`` RGB mean, 0..255 scale."""
        return np.asarray(self.metadata["pixel_mean"], dtype=np.float32)

    @property
    def pixel_std(self) -> np.ndarray:
        """float32 ``(3,)`` RGB std, 0..255 scale."""
        return np.asarray(self.metadata["pixel_std"], dtype=np.float32)

    @property
    def mask_threshold(self) -> float:
        return float(self.metadata["mask_threshold"])

    @property
    def precision(self) -> str:
        return str(self.metadata["precision"])

    @property
    def embedding_shape(self) -> tuple[int, int, int, int]:
        """``(1, C, S/16, S/16)``; C is 256 for every official model (``embedding_dim``)."""
        grid = self.image_size // 16
        return (1, int(self.metadata.get("embedding_dim", 256)), grid, grid)

    def has(self, role: str) -> bool:
        """Whether the bundle holds a file for ``role`` ("encoder", "decoder_sam", "golden", ...)."""
        return bool(self.metadata["models"].get(role))

    def path(self, role: str) -> Path:
        """Path of the file for ``role``; ``BundleError`` if the bundle has none."""
        name = self.metadata["models"].get(role)
        if not name:
            raise BundleError(f"bundle {self.root} has no {role!r} file. {_REEXPORT}")
        return self.root / name

    def sha256(self, role: str) -> str:
        """Recorded sha256 of the file for ``role`` (used e.g. as a cache key)."""
        return str(self.metadata["files"][self.metadata["models"][role]])


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def _check_metadata(meta: Any, where: Path) -> None:
    """Raise :class:`BundleError` naming every missing or mistyped key."""
    if not isinstance(meta, dict):
        raise BundleError(f"{where} must hold a JSON object. {_REEXPORT}")
    problems: list[str] = []
    required = (
        "format", "format_version", "arch", "image_size", "pixel_mean", "pixel_std", "mask_threshold",
        "opset", "precision", "quantization", "edgesam_version", "models", "files", "verification",
    )  # fmt: skip
    missing = [k for k in required if k not in meta]
    if missing:
        problems.append(f"missing key(s) {', '.join(missing)}")

    def bad(key: str, ok: bool, want: str) -> None:
        if key in meta and not ok:
            problems.append(f"{key!r} must be {want}, got {meta[key]!r}")

    bad("format", meta.get("format") == BUNDLE_FORMAT, repr(BUNDLE_FORMAT))
    version = meta.get("format_version")
    bad("format_version", version == BUNDLE_FORMAT_VERSION, f"{BUNDLE_FORMAT_VERSION} (this edgesam's format)")
    bad("arch", isinstance(meta.get("arch"), str) and bool(meta.get("arch")), "a non-empty string")
    size = meta.get("image_size")
    bad("image_size", isinstance(size, int) and not isinstance(size, bool) and size > 0 and size % 16 == 0,
        "a positive multiple of 16")  # fmt: skip
    for key in ("pixel_mean", "pixel_std"):
        vals = meta.get(key)
        ok = isinstance(vals, list) and len(vals) == 3 and all(_is_number(v) for v in vals)
        bad(key, ok and (key == "pixel_mean" or all(v > 0 for v in vals)), "a list of 3 numbers (std > 0)")
    bad("mask_threshold", _is_number(meta.get("mask_threshold")), "a number")
    opset = meta.get("opset")
    bad("opset", isinstance(opset, int) and not isinstance(opset, bool) and opset >= 11, "an integer >= 11")
    bad("precision", meta.get("precision") in PRECISIONS, f"one of {PRECISIONS}")
    bad("quantization", meta.get("quantization") is None or isinstance(meta.get("quantization"), dict),
        "null or an object")  # fmt: skip
    bad("edgesam_version", isinstance(meta.get("edgesam_version"), str), "a string")
    bad("verification", isinstance(meta.get("verification"), dict), "an object")
    files, models = meta.get("files"), meta.get("models")
    files_ok = isinstance(files, dict) and all(
        isinstance(k, str) and isinstance(v, str) and len(v) == 64 for k, v in files.items()
    )
    bad("files", files_ok, "an object mapping file names to sha256 hex digests")
    models_ok = isinstance(models, dict) and all(isinstance(models.get(r), str) for r in ("encoder", "decoder"))
    bad("models", models_ok, 'an object with "encoder" and "decoder" file names')
    if files_ok and models_ok:
        unlisted = [f"{r}={n!r}" for r, n in models.items() if n and n not in files]
        if unlisted:
            problems.append(f"'models' names file(s) without a sha256 in 'files': {', '.join(unlisted)}")
    if problems:
        raise BundleError(f"invalid bundle metadata in {where}: " + "; ".join(problems) + f". {_REEXPORT}")


def _inside(root: Path, name: str) -> Path:
    """``root / name`` if it stays inside ``root`` (after resolving symlinks), else raise."""
    if not name or os.path.isabs(name) or name.startswith(("/", "\\")):
        raise BundleIntegrityError(f"bundle file name {name!r} must be a relative path inside {root}")
    target = (root / name).resolve()
    if target != root and root not in target.parents:
        raise BundleIntegrityError(
            f"bundle file {name!r} resolves to {target}, outside the bundle folder {root}; a bundle "
            f"must be self-contained. {_REEXPORT}"
        )
    return target


def _check_external_data(root: Path, model_name: str, files: Mapping[str, str]) -> None:
    try:
        locations = external_data_locations(root / model_name)
    except OnnxParseError as exc:
        raise BundleIntegrityError(f"{root / model_name} is not a valid ONNX file ({exc}). {_REEXPORT}") from exc
    for loc in sorted(set(locations)):
        if not loc:
            raise BundleIntegrityError(f"{model_name} has an external tensor without a location. {_REEXPORT}")
        base = (root / model_name).parent
        target = (base / loc).resolve()
        if os.path.isabs(loc) or (target != root and root not in target.parents):
            raise BundleIntegrityError(
                f"{model_name} stores tensor data in {loc!r}, which is outside the bundle folder {root}. "
                f"Bundles must be self-contained: save the model with its external data inside the "
                f"folder (onnx.save_model(..., location=<file in the folder>)) or re-export it."
            )
        rel = target.relative_to(root).as_posix()
        if rel not in files:
            raise BundleIntegrityError(
                f"{model_name} stores tensor data in {loc!r}, which is not listed (with its sha256) in "
                f"{METADATA_FILE}. {_REEXPORT}"
            )


def load_bundle(path: str | os.PathLike[str], *, check_hashes: bool = True) -> Bundle:
    """Read and validate a bundle folder.

    Checks: the folder and ``edgesam.json`` exist; the metadata has every key with a valid
    type; every listed file exists inside the folder and (``check_hashes``) has the recorded
    sha256; every ONNX file keeps its external tensor data in listed files inside the folder.

    Raises:
        BundleError: missing folder/metadata/file, unreadable or invalid metadata.
        BundleIntegrityError: sha256 mismatch, or a path/external-data reference outside the folder.
    """
    given = Path(path)
    if not given.exists():
        raise BundleError(f"bundle folder {given} does not exist. {_REEXPORT}")
    if not given.is_dir():
        raise BundleError(f"{given} is not a folder; a bundle is a folder holding {METADATA_FILE} and ONNX files")
    root = given.resolve()
    meta_path = root / METADATA_FILE
    if not meta_path.is_file():
        raise BundleError(f"{root} has no {METADATA_FILE}, so it is not an edgesam bundle. {_REEXPORT}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{meta_path} is not valid JSON ({exc}). {_REEXPORT}") from exc
    _check_metadata(meta, meta_path)
    files: dict[str, str] = meta["files"]
    for name, digest in sorted(files.items()):
        target = _inside(root, name)
        if not target.is_file():
            raise BundleError(
                f"bundle file {name} is missing from {root}. Copy the whole bundle folder, or {_REEXPORT[0].lower()}"
                f"{_REEXPORT[1:]}"
            )
        if check_hashes:
            actual = sha256_file(target)
            if actual != digest:
                raise BundleIntegrityError(
                    f"bundle file {name} in {root} was altered or corrupted: sha256 {actual} differs from "
                    f"{digest} recorded at export. Restore the original file (files in a bundle must not be "
                    f"edited), or {_REEXPORT[0].lower()}{_REEXPORT[1:]}"
                )
    for role, name in meta["models"].items():
        if name and name.endswith(".onnx"):
            _check_external_data(root, name, files)
    return Bundle(root=root, metadata=meta)


def write_metadata(root: str | os.PathLike[str], metadata: Mapping[str, Any]) -> Path:
    """Write ``edgesam.json`` into ``root`` with the sha256 of every other file in the folder.

    ``metadata`` holds every key except ``files`` and ``format``/``format_version``, which are
    filled in here. Returns the metadata path.
    """
    folder = Path(root)
    files = {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != METADATA_FILE
    }
    meta = {"format": BUNDLE_FORMAT, "format_version": BUNDLE_FORMAT_VERSION, **metadata, "files": files}
    _check_metadata(meta, folder / METADATA_FILE)
    out = folder / METADATA_FILE
    out.write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return out


def check_replaceable(out: str | os.PathLike[str], *, overwrite: bool) -> None:
    """Raise unless a bundle folder may be written at ``out``.

    Nothing there is always fine. With ``overwrite``, only an existing bundle folder (one with
    :data:`METADATA_FILE`) or an empty folder may be replaced: a photo, a file of any other
    kind, or a folder of other things is never deleted to make room for a bundle.

    Raises:
        FileExistsError: ``out`` exists and ``overwrite`` is False.
        ValueError: ``overwrite`` is True but ``out`` is neither a bundle folder nor an empty folder.
    """
    path = Path(out)
    if not path.exists() and not path.is_symlink():
        return
    if not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    if path.is_dir() and not path.is_symlink():
        if (path / METADATA_FILE).is_file() or not any(path.iterdir()):
            return
        what = f"a folder without {METADATA_FILE} (not an edgesam bundle) that is not empty"
    else:
        what = "a link" if path.is_symlink() else "a file"
    raise ValueError(f"{path} is {what}; overwrite replaces only a bundle folder or an empty folder, so it was "
                     "left alone: choose another output path or remove it yourself")


def publish_folder(tmp: Path, out: Path) -> None:
    """Move the finished bundle folder ``tmp`` to ``out`` by atomic renames (same filesystem).

    An existing ``out`` is replaced only once ``tmp`` is complete, and restored if the final
    rename fails, so readers never see a half-written bundle. Only a bundle folder or an empty
    folder is ever replaced (see :func:`check_replaceable`).
    """
    if out.exists() or out.is_symlink():
        check_replaceable(out, overwrite=True)
    os.chmod(tmp, 0o755)  # mkdtemp creates 0700 folders
    if not out.exists():
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.replace(out, old / "bundle")
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old / "bundle", out)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
