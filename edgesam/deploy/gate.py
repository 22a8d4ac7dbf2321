"""The fidelity gate of ``edgesam deploy``: every candidate against fp32 torch on held-out images.

Held-out images are natural photos when scikit-image is installed (the public-domain images
of ``skimage.data``), else the package's synthetic scenes; :func:`heldout_images` says which.
The reference runs once per image and prompt (:class:`CachedBackend`), so gating many
candidates costs one reference pass.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import numpy as np

from edgesam.fidelity import FidelityReport, compare_predictors

__all__ = ["PHOTOS", "CachedBackend", "gate_candidate", "heldout_images"]

#: ``skimage.data`` photos used as held-out images, in order (public domain, shipped with scikit-image).
PHOTOS: tuple[str, ...] = ("rocket", "chelsea", "coffee", "astronaut", "immunohistochemistry", "hubble_deep_field")


def _photos(count: int) -> list[np.ndarray] | None:
    try:
        import skimage.data as data
    except ImportError:
        return None
    images = []
    for name in PHOTOS[:count]:
        try:
            image = np.asarray(getattr(data, name)())
        except Exception:  # noqa: BLE001 - a photo that needs a download is left out
            continue
        if image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8:
            images.append(np.ascontiguousarray(image))
    return images or None


def heldout_images(count: int = 4, *, long_side: int = 640, seed: int = 0) -> tuple[list[np.ndarray], str]:
    """``count`` uint8 ``[H, W, 3]`` RGB images and a line saying what they are.

    Natural photos from scikit-image when it is installed, else synthetic scenes of the
    package (:func:`edgesam.quantization.samples.sample_images`) with ``long_side`` pixels.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    photos = _photos(count)
    if photos is not None:
        names = ", ".join(PHOTOS[: len(photos)])
        return photos, f"{len(photos)} natural photo(s) from scikit-image's data module (public domain: {names})"
    from edgesam.quantization.samples import sample_images

    images = sample_images(count, long_side=long_side, seed=seed + 20_000)
    return images, (f"{len(images)} synthetic scene(s) of the package (install scikit-image for natural photos: "
                    f"pip install 'edgesam[deploy]')")  # fmt: skip


def _key(*arrays: np.ndarray) -> str:
    digest = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(str((a.shape, a.dtype.str)).encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


class CachedBackend:
    """A backend that remembers the outputs of another for inputs it has seen (the reference).

    Args:
        backend: any :class:`edgesam.runtimes.Backend`.
    """

    def __init__(self, backend: Any) -> None:
        self.inner = backend
        self.name = getattr(backend, "name", "reference")
        for attr in ("image_size", "pixel_mean", "pixel_std", "mask_threshold"):
            setattr(self, attr, getattr(backend, attr))
        self._memo: dict[str, Any] = {}

    def encode(self, image: np.ndarray) -> np.ndarray:
        """See :meth:`edgesam.runtimes.base.Backend.encode`."""
        key = "e" + _key(image)
        if key not in self._memo:
            self._memo[key] = self.inner.encode(image)
        return self._memo[key]

    def decode(self, *args: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """See :meth:`edgesam.runtimes.base.Backend.decode`."""
        key = "d" + _key(*args)
        if key not in self._memo:
            self._memo[key] = self.inner.decode(*args)
        return self._memo[key]


def gate_candidate(reference: Any, candidate: Any, images: Sequence[np.ndarray], *,
                   prompts_per_image: int = 8, seed: int = 1) -> FidelityReport:  # fmt: skip
    """:func:`edgesam.fidelity.compare_predictors` of ``candidate`` against ``reference``."""
    return compare_predictors(reference, candidate, list(images), prompts_per_image=prompts_per_image, seed=seed)
