"""Turn measured variants into result rows as they finish (baseline and reference come first).

The suite measures torch fp32 first, then the other fp32 variants, then the rest, so when a
variant finishes its baseline (speed-up) and its fidelity reference have already been measured
and its row can be written at once: an interrupted run keeps what it measured.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .consistency import baseline_flag, check_metrics
from .fidelity import Outputs, compare_outputs
from .results import BenchConfig, Metric, ResultRow, compute_speedup
from .sources import ModelSource
from .variants import Variant

__all__ = ["RowMaker"]


@dataclass
class _Done:
    variant: Variant
    metrics: dict[str, Metric]
    outputs: Outputs
    label: str
    flags: list[str] = field(default_factory=list)


@dataclass
class RowMaker:
    """Builds rows for one run.

    Attributes:
        source: the model measured.
        image_label: sample image size, e.g. ``"640x480"``.
        threads: intra-op threads used.
        quick: rows are smoke-test quality.
        fingerprint: device fingerprint stored in every row.
    """

    source: ModelSource
    image_label: str
    threads: int | None
    quick: bool
    fingerprint: Mapping[str, Any]
    _done: list[_Done] = field(default_factory=list)

    def config(self, variant: Variant, notes: Mapping[str, Any]) -> BenchConfig:
        """The row configuration of `variant` (`notes`: settings learnt at load time)."""
        extra = {"model": self.source.name, "image": self.image_label, **dict(variant.notes),
                 **dict(notes)}
        return BenchConfig(backend=variant.backend, precision=variant.precision,
                           arch=self.source.arch, image_size=self.source.image_size,
                           threads=self.threads, quick=self.quick, extra=extra)

    def _baseline(self) -> _Done | None:
        """Torch fp32 if measured, else the first fp32, else the first measured variant."""
        for rule in (lambda d: d.variant.backend == "torch" and d.variant.precision == "fp32",
                     lambda d: d.variant.precision == "fp32", lambda d: True):
            hit = next((d for d in self._done if rule(d)), None)
            if hit is not None:
                return hit
        return None

    def _reference(self, variant: Variant) -> _Done | None:
        """Torch fp32 if measured, else `variant`'s backend in fp32 (None if neither)."""
        for d in self._done:
            if d.variant.backend == "torch" and d.variant.precision == "fp32":
                return d
        return next((d for d in self._done if d.variant.backend == variant.backend
                     and d.variant.precision == "fp32"), None)

    def add(self, variant: Variant, metrics: dict[str, Metric], outputs: Outputs,
            notes: Mapping[str, Any]) -> ResultRow:
        """Record a measured variant and return its row."""
        usable = (self.fingerprint.get("cpu") or {}).get("usable_cpus")
        done = _Done(variant, metrics, outputs, self.config(variant, notes).label(),
                     check_metrics(metrics, usable))
        self._done.append(done)
        base = self._baseline() or done
        ref = self._reference(variant)
        fidelity = {} if ref is None or ref is done else compare_outputs(outputs, ref.outputs)
        row = ResultRow.create(self.config(variant, notes), metrics, fidelity=fidelity,
                               speedup=compute_speedup(metrics, base.metrics),
                               baseline=base.label, fingerprint=dict(self.fingerprint))
        row.flags = list(done.flags)
        if base is not done and base.flags:
            row.flags.append(baseline_flag(base.label))
        return row
