"""``edgesam.load_model``: a checkpoint by file path or by model name.

Names (``edgesam-demo``, ``mobile_sam``, ...; :func:`edgesam.list_models`) are resolved by the
catalogue (:mod:`edgesam.bundle.catalogue`: embedded, cached, or downloaded once into
``$EDGESAM_HOME``); the file is then loaded by :func:`edgesam.models.checkpoints.load_model`,
which knows nothing of names, caches or downloads. Imports torch (through ``models``).
"""

from __future__ import annotations

import os

import torch

from edgesam.bundle.catalogue import resolve
from edgesam.models.checkpoints import load_model as _load_file
from edgesam.models.sam import Sam

__all__ = ["load_model"]


def load_model(
    path_or_name: str | os.PathLike[str],
    arch: str | None = None,
    *,
    device: str | torch.device = "cpu",
    image_size: int | None = None,
    download: bool = True,
) -> Sam:
    """Load a SAM-family checkpoint (a file, or a name from :func:`edgesam.list_models`).

    Args:
        path_or_name: a ``.pt``/``.pth``/``.safetensors`` file or a model name.
        arch: expected architecture; detected from the keys and shapes when ``None``.
        device: torch device for the model.
        image_size: input side ``S`` when the checkpoint was trained at a non-default size.
        download: fetch a named checkpoint that is not cached yet (else FileNotFoundError).

    Raises:
        FileNotFoundError, ValueError: see :func:`edgesam.models.checkpoints.load_model` and
        :func:`edgesam.bundle.catalogue.resolve`.
    """
    return _load_file(path_or_name, arch, device=device, image_size=image_size,
                      resolve=lambda name: resolve(name, download=download))  # fmt: skip
