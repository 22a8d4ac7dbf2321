"""Upscaling of low-resolution mask logits, restricted to where a mask can be.

SAM turns the decoder's ``[S/4, S/4]`` logits into image-sized logits with two bilinear
resizes (half-pixel centres, no antialiasing, clamped edges): up to ``S x S``, crop the valid
``input_size`` region, then resize to the ``original_size`` of the image. Every output value is
a convex combination of a few neighbouring low-resolution values, so an output pixel can exceed
a threshold only near low-resolution pixels that do. :meth:`MaskUpscaler.upscale_roi` computes
the output only inside the rectangle those pixels can reach, with the same OpenCV passes as a
full upscale (an integer-factor first pass on a block with a margin, then one-axis passes over
full-length strips so the second pass keeps its global geometry). Counts and binary masks
taken on the rectangle therefore equal those of the full-resolution upscale.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["MaskUpscaler", "UpscaledRoi"]

_LINEAR = cv2.INTER_LINEAR


class _Axis1D:
    """Support of a 1-D bilinear resize ``in_size -> out_size`` (align_corners=False, clamped)."""

    def __init__(self, in_size: int, out_size: int, keep: int | None = None) -> None:
        scale = in_size / out_size
        n = out_size if keep is None else keep
        src = np.maximum((np.arange(n, dtype=np.float64) + 0.5) * scale - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
        frac = src - i0
        i1 = np.where(frac > 0, np.minimum(i0 + 1, in_size - 1), i0)
        # Conservative monotone bounds of the inputs each output reads.
        self.lo = np.minimum.accumulate(i0[::-1])[::-1]
        self.hi = np.maximum.accumulate(i1)

    def reach(self, a: int, b: int) -> tuple[int, int]:
        """Outputs ``[o0, o1)`` that read any input in ``[a, b]``."""
        return int(np.searchsorted(self.hi, a, "left")), int(np.searchsorted(self.lo, b, "right"))

    def needs(self, o0: int, o1: int) -> tuple[int, int]:
        """Inputs ``[i0, i1)`` read by outputs ``[o0, o1)``."""
        return int(self.lo[o0]), int(self.hi[o1 - 1]) + 1


@dataclass(frozen=True)
class UpscaledRoi:
    """Image-frame logits inside ``[y0:y0+h, x0:x0+w]``; at or below the threshold elsewhere."""

    logits: np.ndarray  # float32 [h, w]
    x0: int
    y0: int


class MaskUpscaler:
    """Upscales ``[S/4, S/4]`` decoder logits of one image to its original size.

    Args:
        low_res_size: ``(h, w)`` of the decoder's mask logits (``S/4`` each).
        image_size: ``S``, the square model input side.
        input_size: ``(h, w)`` of the resized image inside the padded input.
        original_size: ``(H, W)`` of the image the masks are for.
    """

    def __init__(
        self,
        *,
        low_res_size: tuple[int, int],
        image_size: int,
        input_size: tuple[int, int],
        original_size: tuple[int, int],
    ) -> None:
        self.low_res_size = (int(low_res_size[0]), int(low_res_size[1]))
        self.image_size = int(image_size)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.original_size = (int(original_size[0]), int(original_size[1]))
        if any(self.image_size % n for n in self.low_res_size):
            raise ValueError(f"image_size {image_size} is not a multiple of {self.low_res_size}")
        self._factor = (self.image_size // self.low_res_size[0], self.image_size // self.low_res_size[1])
        self._first = tuple(_Axis1D(self.low_res_size[a], self.image_size, keep=self.input_size[a]) for a in (0, 1))
        self._second = tuple(_Axis1D(self.input_size[a], self.original_size[a]) for a in (0, 1))

    def _check(self, low_res: np.ndarray) -> np.ndarray:
        low_res = np.asarray(low_res, dtype=np.float32)
        if low_res.shape != self.low_res_size:
            raise ValueError(f"expected low-res logits of shape {self.low_res_size}, got {low_res.shape}")
        return low_res

    def upscale(self, low_res: np.ndarray) -> np.ndarray:
        """Full upscale: float32 ``[S/4, S/4]`` -> ``[H, W]``."""
        low_res = self._check(low_res)
        s = self.image_size
        padded = cv2.resize(low_res, (s, s), interpolation=_LINEAR)
        valid = padded[: self.input_size[0], : self.input_size[1]]
        height, width = self.original_size
        return cv2.resize(valid, (width, height), interpolation=_LINEAR)

    def upscale_roi(self, low_res: np.ndarray, threshold: float) -> UpscaledRoi:
        """Upscale only the rectangle outside which every output logit is ``<= threshold``.

        Returns an empty ``[0, 0]`` region when no low-res logit can exceed ``threshold``.
        """
        low_res = self._check(low_res)
        bounds = self._roi_bounds(low_res, threshold)
        if bounds is None:
            return UpscaledRoi(np.zeros((0, 0), dtype=np.float32), 0, 0)
        ya, yb, xa, xb = bounds
        return UpscaledRoi(self._evaluate(low_res, ya, yb, xa, xb), xa, ya)

    def roi_strips(self, low_res: np.ndarray, threshold: float, max_pixels: int = 1 << 20) -> Iterator[UpscaledRoi]:
        """The logits of :meth:`upscale_roi`, left to right in column strips of at most
        ``max(1, max_pixels // h)`` columns (``h``: the rectangle's height), with the same values.

        Only one strip's ``[h, w_strip]`` output (plus the ``[<= S, w]`` horizontal pass) is in
        memory at a time, so a mask covering a huge image costs a bounded working set.
        Yields nothing when no low-res logit can exceed ``threshold``.
        """
        low_res = self._check(low_res)
        bounds = self._roi_bounds(low_res, threshold)
        if bounds is None:
            return
        ya, yb, xa, xb = bounds
        horiz, ja, jb = self._horizontal(low_res, ya, yb, xa, xb)
        step = max(1, int(max_pixels) // max(1, yb - ya))
        for c0 in range(0, xb - xa, step):
            c1 = min(c0 + step, xb - xa)
            # The vertical pass over one group of columns is independent of the others (the
            # horizontal size is unchanged, so OpenCV copies the columns exactly).
            yield UpscaledRoi(self._vertical(horiz[:, c0:c1], ja, jb)[ya:yb], xa + c0, ya)

    def _roi_bounds(self, low_res: np.ndarray, threshold: float) -> tuple[int, int, int, int] | None:
        """``(ya, yb, xa, xb)`` of the rectangle of :meth:`upscale_roi` (None when empty)."""
        # A small margin absorbs float rounding of the interpolation.
        margin = 1e-3 + 1e-6 * float(np.abs(low_res).max(initial=0.0))
        above = low_res > (threshold - margin)
        rows, cols = above.any(axis=1), above.any(axis=0)
        if not rows.any():
            return None
        r_any, c_any = np.flatnonzero(rows), np.flatnonzero(cols)
        out: list[tuple[int, int]] = []
        for axis, (a, b) in enumerate(((r_any[0], r_any[-1]), (c_any[0], c_any[-1]))):
            j0, j1 = self._first[axis].reach(int(a), int(b))
            j1 = min(j1, self.input_size[axis])
            if j0 >= j1:
                return None
            o0, o1 = self._second[axis].reach(j0, j1 - 1)
            if o0 >= o1:
                return None
            out.append((o0, o1))
        (ya, yb), (xa, xb) = out
        return ya, yb, xa, xb

    def _evaluate(self, low_res: np.ndarray, ya: int, yb: int, xa: int, xb: int) -> np.ndarray:
        """Exact output logits ``[ya:yb, xa:xb]``."""
        horiz, ja, jb = self._horizontal(low_res, ya, yb, xa, xb)
        return self._vertical(horiz, ja, jb)[ya:yb]

    def _horizontal(self, low_res: np.ndarray, ya: int, yb: int, xa: int, xb: int) -> tuple[np.ndarray, int, int]:
        """Rows ``[ja, jb)`` of the ``S x S`` frame needed by output rows ``[ya, yb)``, resized
        horizontally to the output width and cut to columns ``[xa, xb)``: ``([jb - ja, xb - xa], ja, jb)``."""
        ja, jb = self._second[0].needs(ya, yb)  # rows of the S x S frame
        ka, kb = self._second[1].needs(xa, xb)  # columns of the S x S frame
        # First pass (integer factor) on a low-res block with a one-pixel margin, so that the
        # clamped edges of the block fall outside the rows/columns we keep.
        fy, fx = self._factor
        ra, rb = self._first[0].needs(ja, jb)
        ca, cb = self._first[1].needs(ka, kb)
        ra, ca = max(ra - 1, 0), max(ca - 1, 0)
        rb, cb = min(rb + 1, self.low_res_size[0]), min(cb + 1, self.low_res_size[1])
        block = low_res[ra:rb, ca:cb]
        up = cv2.resize(block, ((cb - ca) * fx, (rb - ra) * fy), interpolation=_LINEAR)
        first = up[ja - ra * fy : jb - ra * fy, ka - ca * fx : kb - ca * fx]
        # Second pass, horizontal: full-width strip (values outside [ka, kb) are never read).
        in_w = self.input_size[1]
        out_w = self.original_size[1]
        strip = np.zeros((jb - ja, in_w), dtype=np.float32)
        strip[:, ka:kb] = first
        return cv2.resize(strip, (out_w, jb - ja), interpolation=_LINEAR)[:, xa:xb], ja, jb

    def _vertical(self, horiz: np.ndarray, ja: int, jb: int) -> np.ndarray:
        """Second pass, vertical: full-height strip of the given columns -> ``[H, w]``."""
        column = np.zeros((self.input_size[0], horiz.shape[1]), dtype=np.float32)
        column[ja:jb] = horiz
        return cv2.resize(column, (horiz.shape[1], self.original_size[0]), interpolation=_LINEAR)
