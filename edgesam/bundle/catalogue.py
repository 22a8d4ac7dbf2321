"""The model-name catalogue: official checkpoints by name, the download cache and the embedded demo model.

Standard library only (plus :func:`edgesam.bundle.format.sha256_file`): resolving a name to a
file is done here, above and apart from the torch models (:mod:`edgesam.models` loads files).
``$EDGESAM_HOME`` moves the cache (default ``~/.cache/edgesam``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .format import sha256_file

__all__ = ["ZOO", "ZooEntry", "cache_dir", "embedded_models", "list_models", "resolve"]


@dataclass(frozen=True)
class ZooEntry:
    """One published checkpoint."""

    name: str
    arch: str
    filename: str
    url: str | None  # None: shipped inside the package
    sha256: str | None  # None where the publisher gives no digest
    license: str
    summary: str


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        ZooEntry(
            "sam_vit_h", "vit_h", "sam_vit_h_4b8939.pth",
            "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth", None,
            "Apache-2.0", "SAM ViT-H, the largest teacher (2.4 GB)",
        ),
        ZooEntry(
            "sam_vit_l", "vit_l", "sam_vit_l_0b3195.pth",
            "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth", None,
            "Apache-2.0", "SAM ViT-L teacher (1.2 GB)",
        ),
        ZooEntry(
            "sam_vit_b", "vit_b", "sam_vit_b_01ec64.pth",
            "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth", None,
            "Apache-2.0", "SAM ViT-B teacher (375 MB)",
        ),
        ZooEntry(
            "mobile_sam", "vit_t", "mobile_sam.pt",
            "https://github.com/ChaoningZhang/MobileSAM/raw/master/weights/mobile_sam.pt", None,
            "Apache-2.0", "MobileSAM, TinyViT-5M encoder (39 MB)",
        ),
        ZooEntry(
            "edge_sam", "edge_sam", "edge_sam.pth",
            "https://huggingface.co/spaces/chongzhou/EdgeSAM/resolve/main/weights/edge_sam.pth", None,
            "S-Lab License 1.0 (non-commercial)", "EdgeSAM, RepViT-M1 encoder",
        ),
        ZooEntry(
            "edge_sam_3x", "edge_sam", "edge_sam_3x.pth",
            "https://huggingface.co/spaces/chongzhou/EdgeSAM/resolve/main/weights/edge_sam_3x.pth", None,
            "S-Lab License 1.0 (non-commercial)", "EdgeSAM trained 3x longer",
        ),
    )
}


def cache_dir() -> Path:
    """Where downloaded checkpoints live: ``$EDGESAM_HOME/checkpoints`` (default ``~/.cache/edgesam``)."""
    root = os.environ.get("EDGESAM_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "edgesam")
    return Path(root) / "checkpoints"


def embedded_models() -> dict[str, Path]:
    """Models shipped inside the package (name -> file), e.g. ``edgesam-demo``."""
    assets = Path(__file__).resolve().parents[1] / "assets"
    return {p.stem: p for p in sorted(assets.glob("*.safetensors"))} if assets.is_dir() else {}


def list_models() -> list[str]:
    """Names accepted by :func:`edgesam.load_model` besides file paths."""
    return sorted([*ZOO, *embedded_models()])


def resolve(name: str, *, download: bool = True, timeout: float = 30.0) -> Path:
    """Path of the checkpoint called ``name``, downloading it into :func:`cache_dir` if needed.

    Raises:
        ValueError: unknown name.
        FileNotFoundError: not cached and the download failed (offline); the message says
            where to put the file.
    """
    embedded = embedded_models()
    if name in embedded:
        return embedded[name]
    if name not in ZOO:
        raise ValueError(f"unknown model name {name!r}; known: {list_models()} (or pass a file path)")
    entry = ZOO[name]
    target = cache_dir() / entry.filename
    if target.is_file():
        return target
    hint = (
        f"Download {entry.url} yourself and put it at {target} "
        f"(or set EDGESAM_HOME, or pass the file itself: as MODEL on the command line, `edgesam COMMAND PATH ...`; "
        "`edgesam.load_model(PATH)` in Python)."
    )
    if not download or entry.url is None:
        raise FileNotFoundError(f"checkpoint {name!r} is not in the cache. {hint}")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(entry.url, timeout=timeout) as response, tempfile.NamedTemporaryFile(
            dir=target.parent, delete=False, suffix=".part"
        ) as tmp:
            shutil.copyfileobj(response, tmp)
    except OSError as exc:
        raise FileNotFoundError(f"could not download checkpoint {name!r} ({exc}). {hint}") from exc
    if entry.sha256 is not None and sha256_file(tmp.name) != entry.sha256:
        os.unlink(tmp.name)
        raise ValueError(f"downloaded {entry.filename} does not match its published sha256; not saved")
    os.replace(tmp.name, target)
    return target
