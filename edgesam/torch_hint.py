"""The one message for "this needs torch, and torch is not installed" (runtime-only installs)."""

from __future__ import annotations

__all__ = ["TORCH_INSTALL", "is_torch_missing", "torch_installed", "torch_missing_error"]

TORCH_INSTALL = "pip install torch==2.13.0 safetensors"


def torch_installed() -> bool:
    """Whether ``torch`` and ``safetensors`` (what loading a checkpoint needs) can be imported; imports neither."""
    from importlib.util import find_spec

    try:
        return all(find_spec(name) is not None for name in ("torch", "safetensors"))
    except (ImportError, ValueError):  # a finder that refuses the name
        return False


def is_torch_missing(exc: BaseException) -> bool:
    """Whether ``exc`` is the ImportError of a missing ``torch`` (or ``safetensors``) package."""
    name = getattr(exc, "name", None) or ""
    return isinstance(exc, ImportError) and name.split(".")[0] in ("torch", "safetensors")


def torch_missing_error(what: str, exc: BaseException | None = None) -> ImportError:
    """An ImportError saying that ``what`` needs torch, how to install it, and the torch-free way."""
    missing = (getattr(exc, "name", None) or "torch").split(".")[0]
    return ImportError(
        f"{what} needs {missing}, which is not installed (a runtime-only install). Install the CPU "
        f"build with `{TORCH_INSTALL}` (or do the full install from a checkout, see the README's "
        "Install section), or run an exported bundle, which needs no torch: "
        "edgesam.load_predictor(BUNDLE_DIR) / `edgesam COMMAND BUNDLE_DIR`."
    )
