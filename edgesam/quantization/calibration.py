"""One numpy calibration set for every quantizer (ONNX Runtime, NNCF/OpenVINO, TensorRT).

A :class:`CalibrationSet` holds RGB images and the model's pre-processing constants.
Iterating it yields encoder feeds ``{"image": float32 [1, 3, S, S]}`` made exactly as
:meth:`edgesam.predictor.SamPredictor.set_image` makes them (longest side to ``S`` with
Pillow-equivalent antialiased bilinear resizing, normalisation, zero padding bottom/right).
:meth:`CalibrationSet.decoder_feeds` gives the decoder's feeds: fp32 embeddings of the
images plus prompts sampled on them (:mod:`edgesam.prompt_geometry`), packed
by the predictor's own :func:`edgesam.predictor.prompts.pack_prompts`.

Images come from a folder (any ``jpg``/``png``/``bmp``/``tif``/``webp``, any size, grey,
RGBA or 16-bit: see :func:`edgesam.io.read_image`) or from the package's sample generator.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from edgesam.predictor.images import to_rgb_uint8
from edgesam.predictor.prompts import pack_prompts
from edgesam.predictor.transforms import normalize_and_pad, resize_longest_side
from edgesam.prompt_geometry import PromptBatch, sample_prompts

__all__ = ["IMAGE_SUFFIXES", "CalibrationError", "CalibrationImage", "CalibrationSet", "find_images"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class CalibrationError(ValueError):
    """The calibration images cannot be used (missing/empty folder, nothing readable)."""


@dataclass(frozen=True)
class CalibrationImage:
    """One calibration image: ``name`` and ``image`` (``uint8 [H, W, 3]`` RGB)."""

    name: str
    image: np.ndarray


def find_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files (by suffix, case-insensitive) directly inside ``folder``, sorted by name.

    Raises:
        CalibrationError: the folder does not exist, is not a folder, or holds no image file.
    """
    root = Path(folder)
    if not root.exists():
        raise CalibrationError(f"calibration folder {root} does not exist")
    if not root.is_dir():
        raise CalibrationError(f"calibration path {root} is not a folder (give a folder of jpg/png images)")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise CalibrationError(
            f"calibration folder {root} holds no image files ({', '.join(IMAGE_SUFFIXES)}); "
            "add a few representative images, or omit --calib to use the package's sample images"
        )
    return files


def _read(paths: Sequence[Path]) -> list[CalibrationImage]:
    from edgesam.io import read_image

    images: list[CalibrationImage] = []
    bad: list[str] = []
    for path in paths:
        try:
            images.append(CalibrationImage(path.name, to_rgb_uint8(read_image(path))))
        except (ValueError, TypeError, OSError) as exc:
            bad.append(f"{path.name} ({exc})")
    if not images:
        raise CalibrationError(f"none of the {len(paths)} calibration image(s) could be read: " + "; ".join(bad))
    if bad:
        warnings.warn(f"skipped {len(bad)} unreadable calibration image(s): " + "; ".join(bad), stacklevel=3)
    return images


class CalibrationSet:
    """Calibration images with the model's pre-processing.

    Args:
        images: the images (``uint8 [H, W, 3]`` RGB arrays, or :class:`CalibrationImage`).
        image_size: model input side ``S``.
        pixel_mean, pixel_std: ``(3,)`` RGB statistics on the 0..255 scale.

    Iterating yields ``{"image": float32 [1, 3, S, S]}`` feeds, one per image.
    """

    def __init__(
        self,
        images: Sequence[np.ndarray | CalibrationImage],
        *,
        image_size: int,
        pixel_mean: Sequence[float] | np.ndarray,
        pixel_std: Sequence[float] | np.ndarray,
    ) -> None:
        if len(images) == 0:
            raise CalibrationError("a calibration set needs at least one image")
        if int(image_size) <= 0:
            raise ValueError(f"image_size must be positive, got {image_size}")
        self.images: list[CalibrationImage] = [
            im if isinstance(im, CalibrationImage) else CalibrationImage(f"image{i}", to_rgb_uint8(im))
            for i, im in enumerate(images)
        ]
        self.image_size = int(image_size)
        self.pixel_mean = np.asarray(pixel_mean, dtype=np.float32).reshape(3)
        self.pixel_std = np.asarray(pixel_std, dtype=np.float32).reshape(3)

    @classmethod
    def from_folder(
        cls,
        folder: str | os.PathLike[str],
        *,
        image_size: int,
        pixel_mean: Sequence[float] | np.ndarray,
        pixel_std: Sequence[float] | np.ndarray,
        limit: int | None = None,
    ) -> CalibrationSet:
        """The images of ``folder`` (sorted by name, at most ``limit``).

        Unreadable files are skipped with a warning; a folder with nothing readable raises
        :class:`CalibrationError`.
        """
        files = find_images(folder)
        images = _read(files[:limit] if limit else files)
        return cls(images, image_size=image_size, pixel_mean=pixel_mean, pixel_std=pixel_std)

    @classmethod
    def from_samples(
        cls,
        count: int,
        *,
        image_size: int,
        pixel_mean: Sequence[float] | np.ndarray,
        pixel_std: Sequence[float] | np.ndarray,
        seed: int = 0,
    ) -> CalibrationSet:
        """``count`` of the package's sample images (:func:`edgesam.quantization.samples.sample_images`)."""
        from edgesam.quantization.samples import sample_images

        images = sample_images(count, long_side=min(1024, max(64, int(image_size))), seed=seed)
        named = [CalibrationImage(f"sample{seed + i}", im) for i, im in enumerate(images)]
        return cls(named, image_size=image_size, pixel_mean=pixel_mean, pixel_std=pixel_std)

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        for i in range(len(self.images)):
            yield {"image": self.model_input(i)}

    def subset(self, start: int, stop: int | None = None) -> CalibrationSet:
        """Images ``start:stop`` with the same pre-processing."""
        part = self.images[start:stop]
        if not part:
            raise CalibrationError(f"no calibration images in range {start}:{stop} of {len(self.images)}")
        return CalibrationSet(part, image_size=self.image_size, pixel_mean=self.pixel_mean, pixel_std=self.pixel_std)

    def model_input(self, index: int) -> np.ndarray:
        """Encoder input of image ``index``: float32 ``[1, 3, S, S]``."""
        resized = resize_longest_side(self.images[index].image, self.image_size)
        return normalize_and_pad(resized, self.pixel_mean, self.pixel_std, self.image_size)

    def prompts(self, index: int, count: int, *, seed: int = 0) -> list[PromptBatch]:
        """Prompts sampled on image ``index`` (original-image pixels)."""
        h, w = self.images[index].image.shape[:2]
        return sample_prompts((h, w), count, seed=seed * 7919 + index)

    def decoder_feeds(
        self, encode: Callable[[np.ndarray], np.ndarray], *, prompts_per_image: int = 8, seed: int = 0
    ) -> list[dict[str, np.ndarray]]:
        """Decoder feeds for every image and sampled prompt batch.

        Args:
            encode: ``float32 [1, 3, S, S] -> float32 [1, C, h, w]`` (the fp32 encoder).
            prompts_per_image: prompts sampled on each image.

        Returns:
            Feeds with ``image_embeddings [1, C, h, w]``, ``point_coords [B, N, 2]``,
            ``point_labels [B, N]``, ``mask_input [B, 1, 4h, 4w]`` and ``has_mask_input [B]``.
        """
        feeds: list[dict[str, np.ndarray]] = []
        for i, item in enumerate(self.images):
            embedding = np.asarray(encode(self.model_input(i)), dtype=np.float32)
            _, _, h, w = embedding.shape
            for batch in self.prompts(i, prompts_per_image, seed=seed):
                packed = pack_prompts(
                    batch.point_coords, batch.point_labels, batch.boxes, None,
                    original_size=item.image.shape[:2], image_size=self.image_size,
                    mask_size=(4 * h, 4 * w), batched=True,
                )  # fmt: skip
                feeds.append({
                    "image_embeddings": embedding, "point_coords": packed.point_coords,
                    "point_labels": packed.point_labels, "mask_input": packed.mask_input,
                    "has_mask_input": packed.has_mask_input,
                })  # fmt: skip
        return feeds
