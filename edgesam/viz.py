"""Drawing masks and prompts over images (numpy + OpenCV)."""

from __future__ import annotations

import numpy as np

_PALETTE = np.array(
    [[30, 144, 255], [255, 99, 71], [50, 205, 50], [255, 215, 0], [186, 85, 211], [0, 206, 209]], dtype=np.float32
)


def distinct_colors(n: int) -> np.ndarray:
    """``float32 [n, 3]`` RGB colours (0..255): the fixed palette, then well-spread hues."""
    import cv2

    if n <= len(_PALETTE):
        return _PALETTE[:n].copy()
    k = n - len(_PALETTE)
    hues = (np.arange(k) * 0.618033988749895 % 1.0 * 180).astype(np.uint8)  # golden-ratio steps
    sat = np.where(np.arange(k) % 2 == 0, 200, 150).astype(np.uint8)
    hsv = np.stack([hues, sat, np.full(k, 230, np.uint8)], axis=-1)[None]
    extra = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0].astype(np.float32)
    return np.concatenate([_PALETTE, extra], axis=0)


def overlay(
    image: np.ndarray,
    masks: np.ndarray,
    *,
    points: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    boxes: np.ndarray | None = None,
    alpha: float = 0.5,
    colors: np.ndarray | None = None,
) -> np.ndarray:
    """Blend masks over an RGB image and draw the prompts.

    Args:
        image: ``[H, W, 3]`` uint8 RGB.
        masks: ``[K, H, W]`` or ``[H, W]`` bool.
        points: ``[N, 2]`` (x, y); labels ``[N]`` (1 green, 0 red).
        boxes: ``[M, 4]`` XYXY.
        colors: ``[K, 3]`` RGB (0..255) per mask; default :func:`distinct_colors`.

    Returns:
        ``[H, W, 3]`` uint8 RGB.
    """
    import cv2

    out = image.astype(np.float32).copy()
    masks = np.asarray(masks, dtype=bool).reshape(-1, *image.shape[:2])
    palette = distinct_colors(len(masks)) if colors is None else np.asarray(colors, np.float32).reshape(-1, 3)
    if len(palette) < len(masks):
        raise ValueError(f"{len(masks)} masks but only {len(palette)} colors")
    for i, mask in enumerate(masks):
        colour = palette[i]
        out[mask] = out[mask] * (1 - alpha) + colour * alpha
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, tuple(float(c) for c in colour), 2)
    out = np.clip(out, 0, 255).astype(np.uint8)
    radius = max(4, round(max(image.shape[:2]) / 120))
    if points is not None:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        lab = np.ones(len(pts)) if labels is None else np.asarray(labels).reshape(-1)
        for (x, y), label in zip(pts, lab):
            colour = (0, 200, 0) if label == 1 else (220, 0, 0)
            cv2.circle(out, (round(x), round(y)), radius, colour, -1, cv2.LINE_AA)
            cv2.circle(out, (round(x), round(y)), radius, (255, 255, 255), 1, cv2.LINE_AA)
    if boxes is not None:
        for x0, y0, x1, y1 in np.asarray(boxes, dtype=np.float64).reshape(-1, 4):
            cv2.rectangle(out, (round(x0), round(y0)), (round(x1), round(y1)), (0, 255, 0), 2)
    return out


def describe_model(backend: object, model: str | None) -> str:
    """``"model edgesam-demo · onnxruntime · int8"``: what produced a result, for captions.

    The precision is the bundle's (``edgesam.json``), plus what the runtime really ran when it
    says (``effective_precision``, e.g. OpenVINO's bf16); torch models run fp32.
    """
    name = str(getattr(backend, "name", type(backend).__name__))
    bundle = getattr(backend, "bundle", None)
    metadata = getattr(bundle, "metadata", None) or {}
    precision = str(metadata.get("precision") or ("fp32" if name == "torch" else "?"))
    ran = getattr(backend, "effective_precision", None)
    if isinstance(ran, str) and ran and ran not in (precision, "f32" if precision == "fp32" else ""):
        precision += f" (ran {ran})"
    parts = [f"model {model}" if model else None, name, precision]
    return " · ".join(p for p in parts if p)


def caption(image: np.ndarray, text: str) -> np.ndarray:
    """``image`` with a white strip below it holding ``text`` (black, scaled to the width).

    Text too long for the width at the smallest legible size is wrapped at its `` · ``
    separators (then at spaces) onto several lines.

    Args:
        image: ``uint8 [H, W, 3]`` RGB.

    Returns:
        ``uint8 [H + h, W, 3]`` RGB, ``h`` the strip's height.
    """
    import cv2

    width = image.shape[1]
    font = cv2.FONT_HERSHEY_SIMPLEX
    (tw, _), _ = cv2.getTextSize(text, font, 0.5, 1)
    scale = max(0.3, min(0.5 * (width - 8) / max(tw, 1), 0.5 * max(1.0, width / 640)))
    thick = max(1, round(scale * 2))

    def fits(line: str) -> bool:
        return cv2.getTextSize(line, font, scale, thick)[0][0] <= width - 8

    lines: list[str] = []
    for sep in (" · ", " "):
        lines = []
        for part in text.split(sep):
            if lines and fits(lines[-1] + sep + part):
                lines[-1] += sep + part
            else:
                lines.append(part)
        if all(fits(line) for line in lines):
            break
    (_, th), base = cv2.getTextSize(text, font, scale, thick)
    step = th + base + 4
    strip = np.full((step * len(lines) + 6, width, 3), 255, np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(strip, line, (4, th + 5 + i * step), font, scale, (0, 0, 0), thick, cv2.LINE_AA)
    return np.concatenate([np.asarray(image, np.uint8), strip], axis=0)
