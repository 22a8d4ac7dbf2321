"""What ``edgesam deploy`` may run on this machine: one candidate per backend x precision.

A :class:`CandidateSpec` names a backend, a precision and the backend constructor options
that run it; :func:`plan_candidates` keeps those this machine can run and says why the others
are skipped (runtime not installed, no GPU, no bf16 units).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

__all__ = ["CANDIDATES", "CandidateSpec", "plan_candidates"]


@dataclass(frozen=True)
class CandidateSpec:
    """One way to run the model.

    Attributes:
        name: label, e.g. ``"openvino-bf16"``.
        backend: registry name (``"torch"``, ``"onnxruntime"``, ``"openvino"``, ``"tensorrt"``).
        precision: ``"fp32"``, ``"bf16"``, ``"fp16"`` or ``"int8"``.
        options: backend constructor keywords (without threads).
        int8: runs an INT8 bundle made with :func:`edgesam.quantization.quantize_bundle`.
        gpu: needs a CUDA GPU.
        recipe: the quantization recipe of that INT8 bundle (None: the backend's default);
            candidates with the same backend and recipe share one bundle.
    """

    name: str
    backend: str
    precision: str
    options: Mapping[str, Any] = field(default_factory=dict)
    int8: bool = False
    gpu: bool = False
    recipe: str | None = None


#: Every candidate, cheapest to build first (INT8 needs quantization, GPU ones need engines).
CANDIDATES: tuple[CandidateSpec, ...] = (
    # the reference itself on this CPU: measured as the baseline a user without edgesam runs, never chosen
    CandidateSpec("torch-fp32", "torch", "fp32", {"device": "cpu", "precision": "fp32"}),
    CandidateSpec("onnxruntime-fp32", "onnxruntime", "fp32", {"precision": "fp32"}),
    CandidateSpec("openvino-fp32", "openvino", "fp32", {"device": "CPU", "precision": "fp32"}),
    CandidateSpec("openvino-bf16", "openvino", "bf16", {"device": "CPU", "precision": "bf16"}),
    # INT8 with the float parts in f32, then the same bundle with them in bf16 (checked like any bf16)
    CandidateSpec("openvino-int8", "openvino", "int8", {"device": "CPU", "precision": "fp32"}, int8=True,
                  recipe="ov-int8"),
    CandidateSpec("openvino-int8-bf16", "openvino", "int8", {"device": "CPU", "precision": "bf16"}, int8=True,
                  recipe="ov-int8"),
    # NNCF as the OpenVINO notebooks use it (ModelType.TRANSFORMER, NNCF's defaults)
    CandidateSpec("openvino-int8-nncf", "openvino", "int8", {"device": "CPU", "precision": "fp32"}, int8=True,
                  recipe="ov-nncf-default"),
    CandidateSpec("onnxruntime-int8", "onnxruntime", "int8", {"precision": "fp32"}, int8=True, recipe="ort-int8"),
    CandidateSpec("torch-cuda-fp16", "torch", "fp16", {"device": "cuda", "precision": "fp16"}, gpu=True),
    CandidateSpec("torch-cuda-bf16", "torch", "bf16", {"device": "cuda", "precision": "bf16"}, gpu=True),
    CandidateSpec("tensorrt-fp32", "tensorrt", "fp32", {"precision": "fp32"}, gpu=True),
    CandidateSpec("tensorrt-fp16", "tensorrt", "fp16", {"precision": "fp16"}, gpu=True),
    CandidateSpec("tensorrt-int8", "tensorrt", "int8", {"precision": "int8"}, int8=True, gpu=True),
)


def _has_bf16(isa: Sequence[str]) -> bool:
    return any(flag in isa for flag in ("avx512_bf16", "amx_bf16", "bf16"))


def plan_candidates(
    backends: Sequence[str] | None,
    *,
    available: Mapping[str, bool | str],
    cuda: bool | str,
    isa: Sequence[str],
    names: Sequence[str] | None = None,
) -> tuple[list[CandidateSpec], list[tuple[CandidateSpec, str]]]:
    """The candidates to try and the skipped ones with their reason.

    Args:
        backends: backend names to consider (None: all).
        available: :func:`edgesam.runtimes.available_backends` (True or a reason per name).
        cuda: True when a CUDA GPU is usable, else the reason it is not.
        isa: CPU feature flags (for bf16).
        names: candidate names to consider (None: all of ``backends``).

    Raises:
        ValueError: an unknown backend or candidate name.
    """
    known = sorted({c.backend for c in CANDIDATES})
    if backends is not None:
        unknown = [b for b in backends if b not in known]
        if unknown:
            raise ValueError(f"unknown backend(s) {unknown}; known: {', '.join(known)}")
    if names is not None:
        unknown = [n for n in names if n not in {c.name for c in CANDIDATES}]
        if unknown:
            raise ValueError(f"unknown candidate(s) {unknown}; known: {', '.join(c.name for c in CANDIDATES)}")
    todo: list[CandidateSpec] = []
    skipped: list[tuple[CandidateSpec, str]] = []
    for spec in CANDIDATES:
        if (backends is not None and spec.backend not in backends) or (names is not None and spec.name not in names):
            continue
        reason = available.get(spec.backend, f"backend {spec.backend!r} is not registered")
        if reason is not True:
            skipped.append((spec, str(reason)))
        elif spec.gpu and cuda is not True:
            skipped.append((spec, f"needs a CUDA GPU ({cuda})"))
        elif spec.backend == "openvino" and spec.options.get("precision") == "bf16" and not _has_bf16(isa):
            skipped.append((spec, "this CPU has no bf16 units (OpenVINO would run it in f32)"))
        else:
            todo.append(spec)
    return todo, skipped
