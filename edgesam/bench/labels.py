"""Words for benchmark rows in plots and tables: what ran, short configuration labels, times, flags.

The JSONL keeps what each backend reported (e.g. OpenVINO's ``runs=f32``) so a configuration's
identity never changes; these helpers only change how it reads: one spelling of precisions
(fp32 / fp16 / bf16 / int8) and a "what ran" phrase such as ``int8 (float parts bf16)``.
"""

from __future__ import annotations

from typing import Any, Sequence

from edgesam.runtimes.precision import normalize_precision

from .results import BenchConfig

__all__ = ["RAN_KEY", "flag_kinds", "format_ms", "metric_title", "precision_word", "ran_label",
           "settings_label", "short_labels"]

#: The ``BenchConfig.extra`` key holding the precision the backend reports it ran in.
RAN_KEY = "runs"
_INT8_WORDS = ("i8", "u8", "int8")


_TITLES = {"encoder": "image embedding, model time only",
           "first_mask": "set_image + 1 click: what a user waits for",
           "decode_point": "1 click, 3 masks", "decode_box": "1 box, 1 mask",
           "decode_box16": "16 boxes in one decoder call", "cold_start": "new process to first mask"}


def metric_title(name: str) -> str:
    """A panel title for a timing metric: its name and what it times, e.g. ``everything_8pps:
    segment everything, 8 points per side``; unknown names unchanged."""
    if name.startswith("everything_") and name.endswith("pps"):
        return f"{name}: segment everything, {name[len('everything_'):-3]} points per side"
    return f"{name}: {_TITLES[name]}" if name in _TITLES else name


def precision_word(text: str) -> str:
    """One spelling per precision: OpenVINO's ``f32`` -> ``fp32``, ``bfloat16`` -> ``bf16``;
    unknown words come back lower-cased."""
    word = str(text).strip().lower()
    if word in _INT8_WORDS:
        return "int8"
    try:
        return normalize_precision(word) or word  # the runtimes' own aliases (f32, bfloat16, half, ...)
    except ValueError:
        return word


def ran_label(config: BenchConfig) -> str:
    """What ran, e.g. ``fp32``, ``int8 (float parts bf16)``, ``fp32 (bf16 asked)``.

    INT8 graphs keep some operations in float: the phrase names the precision those ran in
    when the backend reported it (``extra["runs"]``).
    """
    asked = precision_word(config.precision)
    runs = config.extra.get(RAN_KEY)
    ran = precision_word(runs) if isinstance(runs, str) and runs else None
    if asked == "int8":
        return "int8" + (f" (float parts {ran})" if ran else "")
    if ran is None or ran == asked:
        return asked
    return f"{ran} ({asked} asked)"


def _extra_items(config: BenchConfig) -> dict[str, Any]:
    return {k: v for k, v in config.extra.items() if k != RAN_KEY}


def settings_label(config: BenchConfig) -> str:
    """Every setting but backend and precision, e.g. ``vit_t 1024px 2t image=640x480 (quick)``."""
    parts = [config.arch, f"{config.image_size}px"] + ([f"{config.threads}t"] if config.threads is not None else [])
    parts += [f"{k}={v}" for k, v in sorted(_extra_items(config).items())]
    return " ".join(parts) + (" (quick)" if config.quick else "")


def short_labels(configs: Sequence[BenchConfig]) -> dict[tuple[Any, ...], str]:
    """Label each config by backend, what ran, and only the settings that tell configs apart.

    Arch, size, threads and quick appear when they differ between the configs; an extra
    setting appears when it differs between configs of the same backend (so the per-backend
    ``device=CPU`` / ``device=cpu`` that every row of a backend shares stays out).
    """
    fields = [lambda c: c.arch, lambda c: f"{c.image_size}px",
              lambda c: None if c.threads is None else f"{c.threads}t"]
    varying = [g for g in fields if len({g(c) for c in configs}) > 1]
    by_backend: dict[str, list[BenchConfig]] = {}
    for c in configs:
        by_backend.setdefault(c.backend, []).append(c)
    shown: dict[str, set[str]] = {}
    for backend, group in by_backend.items():
        keys = {k for c in group for k in _extra_items(c)}
        shown[backend] = {k for k in keys if len({str(_extra_items(c).get(k)) for c in group}) > 1}
    quick_varies = len({c.quick for c in configs}) > 1
    labels = {}
    for c in configs:
        parts = [c.backend, ran_label(c)] + [e for e in (g(c) for g in varying) if e]
        parts += [f"{k}={v}" for k, v in sorted(_extra_items(c).items()) if k in shown[c.backend]]
        parts += ["(quick)"] if quick_varies and c.quick else []
        labels[c.key()] = " ".join(parts)
    return labels


def format_ms(value: float) -> str:
    """A latency that reads at a glance: ``0.42 ms``, ``5.13 ms``, ``31.3 ms``, ``810 ms``,
    ``2590 ms``, ``12.3 s`` (never ``2.59e+03 ms``)."""
    size = abs(value)
    if size >= 10_000:
        return f"{value / 1000:.1f} s"
    if size >= 100:
        return f"{value:.0f} ms"
    return f"{value:.1f} ms" if size >= 10 else f"{value:.2f} ms"


def flag_kinds(flags: Sequence[str]) -> list[str]:
    """Short names of a row's flags (see `consistency`): ``load``, ``first mask < encoder``,
    ``unstable p50``, ``inconsistent baseline``; anything else is ``other``."""
    kinds = []
    for flag in flags:
        kind = ("load" if flag.startswith("load average") else
                "first mask < encoder" if "below the encoder" in flag else
                "unstable p50" if "varied too much" in flag else
                "inconsistent baseline" if flag.startswith("speed-ups are against") else "other")
        if kind not in kinds:
            kinds.append(kind)
    return kinds
