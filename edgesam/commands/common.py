"""Argument types shared by the sub-commands (the flag grammar and model loading: :mod:`.grammar`)."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Iterator


def parse_point(text: str) -> tuple[float, float, int]:
    """``"X,Y"`` or ``"X,Y,LABEL"`` -> (x, y, label); label defaults to 1 (foreground)."""
    parts = text.split(",")
    try:
        if len(parts) == 2:
            return float(parts[0]), float(parts[1]), 1
        if len(parts) == 3:
            return float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected X,Y or X,Y,LABEL, got {text!r}")


def parse_box(text: str) -> tuple[float, float, float, float]:
    """``"X0,Y0,X1,Y1"`` -> a box tuple."""
    parts = text.split(",")
    try:
        if len(parts) == 4:
            x0, y0, x1, y1 = (float(p) for p in parts)
            return x0, y0, x1, y1
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected X0,Y0,X1,Y1, got {text!r}")


def check_bundle_out(path: str, *, overwrite: bool) -> None:
    """``-o DIR`` of a command that writes a bundle folder, checked before any work starts.

    Raises:
        ValueError: ``path`` exists and ``--overwrite`` was not given, or it is something
            ``--overwrite`` never replaces (a file, a folder that is neither a bundle nor empty).
    """
    from edgesam.bundle.format import check_replaceable

    try:
        check_replaceable(path, overwrite=overwrite)
    except FileExistsError:
        raise ValueError(f"{path} exists; add --overwrite to replace it") from None
    except ValueError as exc:
        raise ValueError(str(exc).replace("overwrite replaces", "--overwrite replaces", 1)) from None


# lossless formats OpenCV writes: a mask read back must hold exactly 0 and 255
MASK_FORMATS = (".png", ".bmp", ".tif", ".tiff")


def check_image_out(path: str, option: str, *, mask: bool = False, example: str = "mask.png") -> None:
    """An image path the command will write (``-o``, ``--overlay``), checked before any work starts.

    Raises:
        ValueError: ``path`` is a folder, lies under a file, has an extension OpenCV cannot
            write, or (``mask``) a lossy one: a JPEG mask would hold values other than 0 and 255.
    """
    import cv2

    target = Path(path)
    if target.is_dir():
        raise ValueError(f"{option} {path} is a folder; give an image file name such as {target / example}")
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{option} {path}: {parent} is a file, not a folder")
            break
    suffix = target.suffix.lower()
    if mask and suffix not in MASK_FORMATS:
        raise ValueError(f"{option} {path}: a mask needs a lossless format ({', '.join(MASK_FORMATS)}); "
                         f"{suffix or 'no extension'} would change its 0/255 values")
    if not suffix or not cv2.haveImageWriter(f"x{suffix}"):
        raise ValueError(f"{option} {path}: OpenCV cannot write {suffix or 'a file without an extension'} images "
                         "(use .png or .jpg)")


@contextlib.contextmanager
def results_folder(path: Path) -> Iterator[None]:
    """The folder a command appends benchmark results to, around the command's work.

    Checked writable first (a ``ValueError`` naming ``-o``: the CLI's one-line error, exit 2); the
    folders the block created are removed again, when still empty, if the block fails (a model
    not downloaded, an interrupt), so a failed run leaves no empty results folder behind.
    """
    from edgesam.bench.results import ResultsDirError
    from edgesam.bench.suite import check_results_dir

    created = _missing_folders(path)
    try:
        try:
            check_results_dir(path)
        except ResultsDirError as exc:
            raise ValueError(f"{exc}; give -o DIR with a writable folder") from None
        yield
    except BaseException:
        _remove_empty(created)
        raise


def _missing_folders(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders this run created that are still empty (deepest first), and their
    empty sub-folders."""
    for folder in folders:
        if folder.is_dir():
            for sub in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                if not any(sub.iterdir()):
                    sub.rmdir()
            if not any(folder.iterdir()):
                folder.rmdir()
