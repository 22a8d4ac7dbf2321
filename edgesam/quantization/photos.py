"""Public-domain photographs for the default calibration and held-out sets (from scikit-image).

scikit-image ships a few photographs inside its wheel (``skimage/data``), readable offline.
Only those whose documentation states they may be redistributed without restriction are
used (the licence of each is listed in :data:`PHOTOS`). Natural photos calibrate activation
ranges far closer to what a deployed model sees than synthetic scenes do; a user's own
images (``--calib DIR``) are better still.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["CALIBRATION_PHOTOS", "HELDOUT_PHOTOS", "PHOTOS", "Photo", "load_photos", "photos_available"]


@dataclass(frozen=True)
class Photo:
    """A photo of ``skimage.data``: the loader's name and the licence its documentation states."""

    name: str
    licence: str


PHOTOS: dict[str, Photo] = {
    p.name: p
    for p in (
        Photo("astronaut", "public domain (NASA)"),
        Photo("coffee", "CC0 (Rachel Michetti)"),
        Photo("camera", "CC0 (Lav Varshney)"),
        Photo("coins", "no known copyright restrictions (Brooklyn Museum)"),
        Photo("hubble_deep_field", "public domain (NASA)"),
        Photo("immunohistochemistry", "no known copyright restrictions (CMMI)"),
        Photo("chelsea", "CC0 (Stefan van der Walt)"),
        Photo("rocket", "public domain (SpaceX)"),
    )
}
CALIBRATION_PHOTOS = ("astronaut", "coffee", "camera", "coins", "hubble_deep_field", "immunohistochemistry")
HELDOUT_PHOTOS = ("chelsea", "rocket")  # never calibrated on: the gate measures unseen photos


def photos_available() -> bool:
    """True when scikit-image is installed and its bundled photos can be read."""
    try:
        load_photos(("chelsea",))
    except (ImportError, OSError, ValueError):
        return False
    return True


def load_photos(names: tuple[str, ...] | list[str]) -> list[tuple[str, np.ndarray]]:
    """``[(name, uint8 [H, W, 3] RGB)]`` for the named photos (grey ones are repeated to RGB).

    Raises:
        ImportError: scikit-image is not installed.
        ValueError: a name is not one of :data:`PHOTOS`.
    """
    import skimage.data

    out: list[tuple[str, np.ndarray]] = []
    for name in names:
        if name not in PHOTOS:
            raise ValueError(f"unknown calibration photo {name!r}; known: {sorted(PHOTOS)}")
        image = np.asarray(getattr(skimage.data, name)())
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        out.append((f"skimage:{name}", np.ascontiguousarray(image[..., :3], dtype=np.uint8)))
    return out


def default_image_sets(
    calibration: int, heldout: int, *, seed: int, image_size: int, pixel_mean: np.ndarray | list[float],
    pixel_std: np.ndarray | list[float],
) -> tuple[object, object, dict[str, object]]:
    """The default calibration and held-out sets, and their description for the bundle metadata.

    With scikit-image: public-domain photos (:data:`CALIBRATION_PHOTOS`, :data:`HELDOUT_PHOTOS`)
    mixed with a few of the package's synthetic scenes (about a quarter of each set); the
    held-out photos are never calibrated on. Without it: synthetic scenes only.

    Returns:
        ``(calibration CalibrationSet, held-out CalibrationSet, info)``; ``info["source"]`` is
        ``"photos+samples"`` or ``"package samples"``, ``info["photos"]`` names the photos used.
    """
    from edgesam.quantization.calibration import CalibrationImage, CalibrationSet

    pre = dict(image_size=image_size, pixel_mean=pixel_mean, pixel_std=pixel_std)
    if not photos_available():
        calib = CalibrationSet.from_samples(calibration, seed=seed, **pre)
        held = CalibrationSet.from_samples(heldout, seed=seed + 10_000, **pre)
        return calib, held, {"source": "package samples", "images": calibration, "heldout": heldout,
                             "photos": [], "note": "scikit-image is not installed: synthetic scenes only"}  # fmt: skip
    n_photo_cal = min(len(CALIBRATION_PHOTOS), calibration - max(calibration - len(CALIBRATION_PHOTOS), calibration // 4))
    n_photo_held = min(len(HELDOUT_PHOTOS), max(1, heldout - heldout // 2))

    def mix(names: tuple[str, ...], synthetic: int, synthetic_seed: int) -> CalibrationSet:
        images = [CalibrationImage(n, im) for n, im in load_photos(names)]
        if synthetic > 0:
            images += CalibrationSet.from_samples(synthetic, seed=synthetic_seed, **pre).images
        return CalibrationSet(images, **pre)

    calib = mix(CALIBRATION_PHOTOS[:n_photo_cal], calibration - n_photo_cal, seed)
    held = mix(HELDOUT_PHOTOS[:n_photo_held], heldout - n_photo_held, seed + 10_000)
    used = [*CALIBRATION_PHOTOS[:n_photo_cal], *HELDOUT_PHOTOS[:n_photo_held]]
    return calib, held, {
        "source": "photos+samples", "images": len(calib), "heldout": len(held),
        "photos": [{"name": f"skimage.data.{n}", "licence": PHOTOS[n].licence} for n in used],
        "calibration_photos": n_photo_cal, "heldout_photos": n_photo_held,
    }  # fmt: skip
