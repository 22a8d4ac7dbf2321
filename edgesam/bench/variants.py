"""Which backend x precision combinations a benchmark run measures, and why others are skipped.

A `Variant` is one measurable combination: a registered backend, a precision, the bundle kind
it runs (``"fp32"`` bundle, or an INT8 bundle made with ``quantize_bundle`` for that backend)
and the constructor options that select the precision. A combination that cannot run on this
machine becomes a `Skipped` with a reason that ends up in the report; an unknown backend or
precision name is a ``ValueError``.

Precision rules:
  * fp32: every backend (torch needs torch weights, i.e. not a bundle alone).
  * int8: onnxruntime, openvino, tensorrt, each on a bundle quantized for it.
  * fp16: OpenVINO on a GPU device (torch only on a CUDA GPU). TensorRT fp16 needs an FP16-typed
    bundle (``edgesam export --precision fp16``; strongly typed builds on 10.x and 11.x), which
    this harness does not make: skipped with that reason.
  * bf16: OpenVINO and torch on CPUs with native bf16 (AVX512-BF16 / AMX); optional, not a default.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

__all__ = ["DEFAULT_PRECISIONS", "DeviceProbe", "PRECISIONS", "PRESETS", "Skipped", "Variant", "parse_names",
           "plan_variants", "resolve_grid", "validate_names"]

#: Named (backends, precisions) grids for ``edgesam bench --preset NAME`` (explicit flags win).
PRESETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # every CPU runtime in fp32 side by side, plus OpenVINO's bf16 (its own default on CPUs with bf16)
    "runtimes-fp32": (("torch", "onnxruntime", "openvino"), ("fp32", "bf16")),
    # INT8 against fp32 of the runtimes that quantize on CPUs (speed-up and fidelity vs their fp32)
    "int8": (("onnxruntime", "openvino"), ("fp32", "int8")),
}
#: Every precision name the harness knows.
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16", "int8")
#: What ``edgesam bench`` measures unless told otherwise.
DEFAULT_PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")
_BF16_ISA = ("avx512_bf16", "amx_bf16")


@dataclass(frozen=True)
class Variant:
    """One backend x precision the run measures.

    Attributes:
        backend: registry name ("torch", "onnxruntime", ...).
        precision: one of `PRECISIONS`.
        bundle_kind: "torch" (runs the torch model), "fp32" (the fp32 bundle) or "int8"
            (a bundle quantized for `backend`).
        options: JSON-serialisable keyword options for the backend constructor.
        notes: JSON-serialisable settings recorded in the row's config (device, provider...).
    """

    backend: str
    precision: str
    bundle_kind: str
    options: Mapping[str, Any] = field(default_factory=dict)
    notes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``"onnxruntime int8"``."""
        return f"{self.backend} {self.precision}"


@dataclass(frozen=True)
class Skipped:
    """A backend x precision not measured, and why (shown in the report)."""

    backend: str
    precision: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"backend": self.backend, "precision": self.precision, "reason": self.reason}


def parse_names(text: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"a,b"`` or ``["a", "b,c"]`` -> ``("a", "b", "c")`` (order kept, duplicates dropped)."""
    if text is None:
        return None
    names = (n.strip().lower() for part in ([text] if isinstance(text, str) else text) for n in str(part).split(","))
    return tuple(dict.fromkeys(n for n in names if n))


def validate_names(backends: Iterable[str], precisions: Iterable[str]) -> None:
    """Raise ``ValueError`` naming any unknown backend or precision (and the known ones)."""
    from edgesam.runtimes.registry import BACKENDS

    bad_b = [b for b in backends if b not in BACKENDS]
    if bad_b:
        raise ValueError(f"unknown backend(s) {', '.join(map(repr, bad_b))}; "
                         f"known: {', '.join(BACKENDS)}")
    bad_p = [p for p in precisions if p not in PRECISIONS]
    if bad_p:
        raise ValueError(f"unknown precision(s) {', '.join(map(repr, bad_p))}; "
                         f"known: {', '.join(PRECISIONS)}")


def resolve_grid(preset: str | None = None, backends: Sequence[str] | None = None,
                 precisions: Sequence[str] | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The (backends, precisions) a run plans, validated: names given win over `preset`'s grid,
    which wins over every registered backend x `DEFAULT_PRECISIONS`.

    Raises:
        ValueError: unknown preset, backend or precision name.
    """
    from edgesam.runtimes.registry import BACKENDS

    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    grid = PRESETS[preset] if preset is not None else (tuple(BACKENDS), DEFAULT_PRECISIONS)
    out = (tuple(backends or grid[0]), tuple(precisions or grid[1]))
    validate_names(*out)
    return out


def _openvino_devices() -> list[str]:
    try:
        import openvino as ov

        return list(ov.Core().available_devices)
    except Exception:  # noqa: BLE001 - any failure means "no usable device list"
        return []


def _cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


@dataclass
class DeviceProbe:
    """Facts about this machine the precision rules need (callables: probed only when asked).

    Attributes:
        isa: CPU feature flags (``device_fingerprint()["cpu"]["isa"]``).
        ov_devices: returns OpenVINO's device names, e.g. ``["CPU", "GPU.0"]``.
        cuda: returns whether torch sees a CUDA GPU.
    """

    isa: Sequence[str]
    ov_devices: Callable[[], list[str]] = _openvino_devices
    cuda: Callable[[], bool] = _cuda_available

    @property
    def bf16(self) -> bool:
        """Whether the CPU computes bf16 natively (AVX512-BF16 or AMX)."""
        return any(flag in self.isa for flag in _BF16_ISA)


_NO_BF16 = "this CPU has no native bf16 (avx512_bf16 / amx_bf16)"
Rule = Callable[[str, DeviceProbe, bool], "Variant | str"]


def _torch_variant(precision: str, probe: DeviceProbe, has_weights: bool) -> Variant | str:
    if not has_weights:
        return "a bundle holds no torch weights; give a checkpoint as MODEL (or --arch) to measure torch"
    if precision == "fp32":
        return Variant("torch", "fp32", "torch", {}, {"device": "cpu"})
    if precision == "bf16":
        return Variant("torch", "bf16", "torch", {"dtype": "bfloat16"}, {"device": "cpu"}) if probe.bf16 else _NO_BF16
    if precision == "fp16":
        if probe.cuda():
            return Variant("torch", "fp16", "torch", {"device": "cuda", "dtype": "float16"}, {"device": "cuda"})
        return "fp16 is measured on GPUs only (TensorRT, OpenVINO GPU, torch CUDA); no CUDA GPU here"
    return "torch has no INT8 path here; INT8 runs on onnxruntime / openvino / tensorrt bundles"


def _onnxruntime_variant(precision: str, probe: DeviceProbe, has_weights: bool) -> Variant | str:
    if precision in ("fp32", "int8"):
        return Variant("onnxruntime", precision, precision)
    return (f"onnxruntime {precision} is not provided: fp16 runs on TensorRT or OpenVINO GPU, "
            "bf16 on OpenVINO / torch")


def _openvino_variant(precision: str, probe: DeviceProbe, has_weights: bool) -> Variant | str:
    cpu = {"device": "CPU"}
    if precision == "fp32":  # the backend runs a bundle at its own precision (f32); said explicitly all the same
        return Variant("openvino", "fp32", "fp32", {**cpu, "precision": "fp32"}, cpu)
    if precision == "int8":
        return Variant("openvino", "int8", "int8", cpu, cpu)
    if precision == "bf16":
        return Variant("openvino", "bf16", "fp32", {**cpu, "precision": "bf16", "check": False}, cpu) \
            if probe.bf16 else _NO_BF16
    gpus = [d for d in probe.ov_devices() if d.startswith("GPU")]
    if gpus:
        return Variant("openvino", "fp16", "fp32", {"device": gpus[0], "precision": "fp16", "check": False},
                       {"device": gpus[0]})
    return "OpenVINO fp16 needs a GPU device; OpenVINO sees none here"


def _tensorrt_version() -> str | None:
    """The installed TensorRT's version, read without importing it (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-libs"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return None  # e.g. JetPack's apt-installed bindings carry no pip metadata


def _tensorrt_variant(precision: str, probe: DeviceProbe, has_weights: bool) -> Variant | str:
    if precision in ("fp32", "int8"):
        return Variant("tensorrt", precision, precision, {"precision": precision})
    if precision == "fp16":
        # TensorRT builds every network strongly typed (10.x by flag, 11.x always; 11 has no FP16
        # builder flag): fp16 needs an FP16-typed bundle, which this harness does not make.
        return (f"TensorRT {_tensorrt_version() or '10.x/11.x'} builds fp16 only from an FP16-typed bundle "
                "(strongly typed networks): `edgesam export MODEL --precision fp16` makes one, which this "
                "harness does not do yet (benchmarks/gpu_check.py measures it)")
    return "TensorRT bf16 is not provided (use fp16 or int8)"


_RULES: dict[str, Rule] = {"torch": _torch_variant, "onnxruntime": _onnxruntime_variant,
                           "openvino": _openvino_variant, "tensorrt": _tensorrt_variant}


def plan_variants(
    backends: Sequence[str],
    precisions: Sequence[str],
    *,
    has_torch_weights: bool,
    isa: Sequence[str] = (),
    availability: Mapping[str, bool | str] | None = None,
    probe: DeviceProbe | None = None,
) -> tuple[list[Variant], list[Skipped]]:
    """Split the requested backend x precision grid into what runs here and what is skipped.

    Args:
        backends: registry names, in the order to measure (validated).
        precisions: precision names (validated).
        has_torch_weights: whether a torch model is at hand (False for a bundle alone).
        isa: CPU feature flags from the device fingerprint (for bf16).
        availability: `edgesam.runtimes.available_backends()` result (computed if None).
        probe: device facts (default: probed here, with `isa`).

    Returns:
        ``(variants, skipped)``; torch fp32, when present, comes first (baseline and fidelity
        reference), then the other fp32 variants (references without torch weights), then the rest.

    Raises:
        ValueError: unknown backend or precision name.
    """
    validate_names(backends, precisions)
    if availability is None:
        from edgesam.runtimes import available_backends

        availability = available_backends()
    probe = probe or DeviceProbe(isa=tuple(isa))
    variants: list[Variant] = []
    skipped: list[Skipped] = []
    for backend in backends:
        state = availability.get(backend, f"backend {backend!r} is not registered")
        rule = _RULES.get(backend)
        for precision in precisions:
            if state is not True:
                got: Variant | str = f"not installed: {state}"
            elif rule is None:
                got = f"the benchmark has no precision rules for backend {backend!r}"
            else:
                got = rule(precision, probe, has_torch_weights)
            if isinstance(got, Variant):
                variants.append(got)
            else:
                skipped.append(Skipped(backend, precision, got))
    variants.sort(key=lambda v: (not (v.backend == "torch" and v.precision == "fp32"), v.precision != "fp32"))
    return variants, skipped
