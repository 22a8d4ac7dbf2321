"""The teacher's image encoder on the training device, with a checked reduced-precision mode.

``precision="fp32"`` runs the teacher as loaded. ``"bf16"`` / ``"fp16"`` run it under
``torch.autocast``; ``"auto"`` tries bf16 on the CPU and fp16 on CUDA. A reduced precision is
never used unchecked: on the first batch the embeddings are computed both ways and compared
(:data:`TOLERANCE`). ``auto`` falls back to fp32 when the check fails; an explicit
``bf16``/``fp16`` that fails it is an error. The figures are kept in :attr:`TeacherEncoder.report`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ..models.sam import Sam

__all__ = ["TeacherEncoder", "PrecisionReport", "TOLERANCE", "PRECISIONS", "default_cache_batch_size"]

#: A reduced precision is accepted when, on every image of the first batch, the cosine similarity of
#: its embedding to fp32's is at least ``min_cosine`` and the relative L2 error at most ``max_rel_error``.
TOLERANCE = {"min_cosine": 0.999, "max_rel_error": 0.04}
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def default_cache_batch_size(device: torch.device) -> int:
    """1 on the CPU (bounded memory: a ViT-H teacher stays within 8 GB), 8 on CUDA (halved on OOM)."""
    return 8 if device.type == "cuda" else 1


@dataclass
class PrecisionReport:
    """The precision the teacher ran at and, for a reduced one, how far it was from fp32."""

    requested: str
    used: str | None  # None while no batch has run (e.g. every image was cached already)
    min_cosine: float | None = None
    max_rel_error: float | None = None
    accepted: bool | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _compare(low: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    a, b = low.float().flatten(1), ref.float().flatten(1)
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1)
    rel = (a - b).norm(dim=1) / b.norm(dim=1).clamp_min(1e-12)
    return float(cos.min()), float(rel.max())


class TeacherEncoder:
    """``[B, 3, S, S]`` (any device) -> ``[B, C, S/16, S/16]`` float32 on the teacher's device.

    Args:
        teacher: the SAM teacher; moved to ``device`` (its image encoder only is used).
        device: where it runs.
        precision: one of :data:`PRECISIONS`.
    """

    def __init__(self, teacher: Sam, *, device: torch.device, precision: str = "fp32"):
        if precision not in PRECISIONS:
            raise ValueError(f"unknown teacher precision {precision!r}; use one of {', '.join(PRECISIONS)}")
        self.teacher = teacher.eval().requires_grad_(False).to(device)
        self.device = device
        self.requested = precision
        candidate = precision if precision != "auto" else ("fp16" if device.type == "cuda" else "bf16")
        self.dtype = _DTYPES.get(candidate)
        self.report = PrecisionReport(requested=precision, used=None)
        self._candidate = "fp32" if self.dtype is None else candidate
        self._checked = self.dtype is None

    def _run(self, x: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=dtype or torch.float32,
                                                    enabled=dtype is not None):
            return self.teacher.image_encoder(x).float()

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self.device, non_blocking=True)
        if self.report.used is None:
            self.report.used = self._candidate
        if not self._checked:
            ref = self._run(x, None)
            low = self._run(x, self.dtype)
            cos, rel = _compare(low, ref)
            ok = cos >= TOLERANCE["min_cosine"] and rel <= TOLERANCE["max_rel_error"]
            self.report.min_cosine, self.report.max_rel_error, self.report.accepted = cos, rel, ok
            self._checked = True
            if not ok:
                if self.requested != "auto":
                    raise ValueError(
                        f"teacher embeddings in {self.requested} are too far from fp32 (cosine {cos:.5f}, "
                        f"relative error {rel:.4f}; tolerance {TOLERANCE}); use --teacher-precision fp32")
                self.dtype, self.report.used = None, "fp32"
            return ref
        return self._run(x, self.dtype)
