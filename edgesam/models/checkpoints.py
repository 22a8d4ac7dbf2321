"""Reading checkpoints safely, detecting their architecture and loading them strictly."""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from .registry import MODELS, ModelSpec, build_sam, get_spec
from .sam import Sam

# Keys present in published files but not used by SAM (TinyViT's ImageNet classifier).
KNOWN_UNUSED_PREFIXES: dict[str, tuple[str, ...]] = {
    "vit_t": ("image_encoder.head.", "image_encoder.norm_head."),
}

StateDict = dict[str, torch.Tensor]


_EXPECTED = (
    "expected a SAM-family checkpoint: a PyTorch .pt/.pth file written by torch.save (a zip "
    "archive or a pickle) or a .safetensors file, e.g. sam_vit_b_01ec64.pth or mobile_sam.pt"
)


def _not_a_checkpoint(path: Path) -> str | None:
    """Why ``path`` cannot be a checkpoint, judged from its first bytes (None if it may be one)."""
    with open(path, "rb") as f:
        head = f.read(64)
    if not head:
        return f"{path} is an empty file, not a checkpoint; {_EXPECTED}"
    if path.suffix == ".safetensors" or head[:2] == b"PK" or head[:1] == b"\x80":
        return None  # safetensors, torch.save's zip archive, or a (legacy) pickle
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"{path} is not a checkpoint (unknown binary format, starts with {head[:8]!r}); {_EXPECTED}"
    first = text.splitlines()[0][:40] if text.strip() else ""
    return f"{path} is a text file (starts with {first!r}), not a checkpoint; {_EXPECTED}"


def read_state_dict(path: str | os.PathLike[str]) -> tuple[StateDict, dict[str, str]]:
    """Read tensors from ``.safetensors`` or a ``torch.save`` file with ``weights_only=True``.

    Unwraps ``{"model": ...}`` / ``{"state_dict": ...}`` and strips ``module.`` prefixes.

    Returns:
        The state dict and the file's metadata (safetensors header metadata, else empty).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    problem = _not_a_checkpoint(path)
    if problem:
        raise ValueError(problem)
    metadata: dict[str, str] = {}
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as f:
                metadata = dict(f.metadata() or {})
                obj: object = {k: f.get_tensor(k) for k in f.keys()}
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, RuntimeError, OSError) as exc:
        raise ValueError(
            f"could not read checkpoint {path}: the file is truncated, corrupt, not a checkpoint, "
            f"or needs code execution to load (only weights-only files are accepted): {exc}"
        ) from exc
    except Exception as exc:  # safetensors raises its own error types
        raise ValueError(f"could not read checkpoint {path} ({type(exc).__name__}: {exc}); {_EXPECTED}") from exc
    for key in ("model", "state_dict"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not contain a state dict of tensors")
    state = {k.removeprefix("module."): v for k, v in obj.items()}
    return state, metadata


def _expected_shapes(spec: ModelSpec, image_size: int | None) -> dict[str, tuple[int, ...]]:
    with torch.device("meta"):
        model = build_sam(spec, image_size=image_size)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _drop_unused(state: StateDict, arch: str) -> StateDict:
    prefixes = KNOWN_UNUSED_PREFIXES.get(arch, ())
    return {k: v for k, v in state.items() if not k.startswith(prefixes)}


def layout_mismatch(state: StateDict, expected: Mapping[str, tuple[int, ...]]) -> str:
    """Human-readable description of missing / unexpected / mis-shaped keys ('' if none)."""

    def show(items: list[str]) -> str:
        return ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")

    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshaped = sorted(
        f"{k} {tuple(state[k].shape)} != {expected[k]}"
        for k in set(state) & set(expected)
        if tuple(state[k].shape) != expected[k]
    )
    parts = [f"{name}: {show(keys)}" for name, keys in
             (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)) if keys]
    return "; ".join(parts)


def detect_arch(state: StateDict, *, image_size: int | None = None) -> str:
    """Name of the registered architecture whose layout ``state`` matches exactly.

    Raises:
        ValueError: no registered architecture matches; the message names the closest one
        and its missing / unexpected / mis-shaped keys.
    """
    best: tuple[int, str, str] | None = None
    for arch, spec in MODELS.items():
        candidate = _drop_unused(state, arch)
        if spec.encoder not in _encoder_prefix_hints(candidate):
            continue
        problem = layout_mismatch(candidate, _expected_shapes(spec, image_size))
        if not problem:
            return arch
        score = problem.count(",") + problem.count(":")
        if best is None or score < best[0]:
            best = (score, arch, problem)
    if best is None:
        raise ValueError("not a SAM-family checkpoint: no image_encoder / mask_decoder keys that edgesam knows")
    raise ValueError(f"checkpoint does not match any known architecture; closest is {best[1]!r}: {best[2]}")


def _encoder_prefix_hints(state: StateDict) -> set[str]:
    """Encoder families whose signature key is present (cheap pre-filter before shape checks)."""
    hints = set()
    if "image_encoder.pos_embed" in state:
        hints |= {"vit_b", "vit_l", "vit_h", "sam_vit"}
    if "image_encoder.patch_embed.seq.0.c.weight" in state:
        hints.add("vit_t")
    if "image_encoder.features.0.0.c.weight" in state:
        hints.add("edge_sam")
    return hints


def load_model(
    path_or_name: str | os.PathLike[str],
    arch: str | None = None,
    *,
    device: str | torch.device = "cpu",
    image_size: int | None = None,
    resolve: Callable[[str], os.PathLike[str] | str] | None = None,
) -> Sam:
    """Load a SAM-family checkpoint into an eval-mode :class:`~edgesam.models.Sam`.

    This layer reads files only; :func:`edgesam.load_model` (:mod:`edgesam.hub`) also accepts
    model names, resolving them through the catalogue (:mod:`edgesam.bundle.catalogue`).

    Args:
        path_or_name: a ``.pt``/``.pth``/``.safetensors`` file, or a model name when
            ``resolve`` is given.
        resolve: turns a model name into a file path (e.g. :func:`edgesam.bundle.catalogue.resolve`);
            without it a name that is not an existing file is refused.
        arch: expected architecture; detected from the keys and shapes when ``None``.
            A checkpoint of another architecture is refused.
        device: torch device for the model.
        image_size: input side ``S`` when the checkpoint was trained at a non-default size
            (safetensors files written by edgesam record it themselves).

    Raises:
        FileNotFoundError, ValueError: missing file, unreadable file, unknown or wrong arch,
        or any missing / unexpected / mis-shaped key (never loaded non-strictly).
    """
    text = os.fspath(path_or_name)
    if os.path.sep in text or Path(text).suffix or Path(text).exists():
        path = Path(text)
    elif resolve is not None:
        path = Path(resolve(text))
    else:
        raise FileNotFoundError(
            f"checkpoint {text!r} is not a file; to load a model by name use edgesam.load_model({text!r}) "
            f"(it resolves names from the catalogue, see edgesam.list_models())"
        )
    state, metadata = read_state_dict(path)
    if image_size is None and "image_size" in metadata:
        image_size = int(metadata["image_size"])
    if arch is None and metadata.get("arch") in MODELS:
        arch = metadata["arch"]
    if arch is None:
        arch = detect_arch(state, image_size=image_size)
    spec = get_spec(arch)
    state = _drop_unused(state, arch)
    problem = layout_mismatch(state, _expected_shapes(spec, image_size))
    if problem:
        try:
            actual: str | None = detect_arch(state, image_size=image_size)
        except ValueError:
            actual = None
        if actual is not None and actual != arch:
            raise ValueError(f"{path} is a {actual!r} checkpoint, not {arch!r}")
        raise ValueError(f"{path} does not match the {arch!r} layout: {problem}")
    return _materialise(spec, image_size, state).to(device).eval()


def _materialise(spec: ModelSpec, image_size: int | None, state: dict[str, torch.Tensor]) -> Sam:
    """Build ``spec`` on the meta device and adopt the checkpoint tensors (no random init).

    Buffers that are not stored in checkpoints are recomputed by each module's
    ``reset_derived_buffers``.
    """
    with torch.device("meta"):
        model = build_sam(spec, image_size=image_size)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()},
                          strict=True, assign=True)  # fmt: skip
    for module in model.modules():
        reset = getattr(module, "reset_derived_buffers", None)
        if reset is not None:
            reset()
    left = [name for name, t in (*model.named_parameters(), *model.named_buffers()) if t.is_meta]
    if left:
        raise RuntimeError(f"tensors neither in the checkpoint nor recomputed: {left[:5]}")
    return model
