"""``edgesam models``: the model zoo and embedded models."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .grammar import Output, add_json

# what the embedded models are (their files live in edgesam/assets/)
_EMBEDDED = {
    "edgesam-demo": ("edgesam's own 128-px demo student, trained on synthetic scenes only (not a general SAM)",
                     "Apache-2.0 (part of edgesam)"),
}  # fmt: skip


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list known checkpoints and where they are cached")
    add_json(p, help="print the list as JSON on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgesam.bundle.catalogue import ZOO, cache_dir, embedded_models
    from edgesam.torch_hint import TORCH_INSTALL, torch_installed

    has_torch = torch_installed()
    rows, models = [], []
    for name, path in embedded_models().items():
        summary, license_ = _EMBEDDED.get(name, ("embedded model", "Apache-2.0 (part of edgesam)"))
        arch = _embedded_arch(path)
        rows.append((name, arch, "embedded", f"{summary}; license {license_}"))
        models.append({"name": name, "embedded": True, "arch": arch, "path": str(path), "summary": summary,
                       "license": license_, "needs_torch": True})  # fmt: skip
    for entry in ZOO.values():
        target = cache_dir() / entry.filename
        cached = target.is_file()
        rows.append((entry.name, entry.arch, "cached" if cached else "not cached",
                     f"{entry.summary}; license {entry.license}"))
        models.append({"name": entry.name, "embedded": False, "arch": entry.arch, "cached": cached,
                       "path": str(target), "url": entry.url, "license": entry.license, "summary": entry.summary,
                       "needs_torch": True})  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(3)] if rows else [0, 0, 0]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:3], widths)) + "  " + row[3] for row in rows]
    lines.append(f"cache: {cache_dir()} (set EDGESAM_HOME to move it)")
    if not has_torch:
        lines.append("torch is not installed (a runtime-only install): loading any model above needs it "
                     f"(`{TORCH_INSTALL}`); a bundle folder made from one (`edgesam export`) runs without torch")
    Output(args).result("\n".join(lines), {"models": models, "cache": str(cache_dir()), "torch_installed": has_torch})
    return 0


def _embedded_arch(path: Path) -> str:
    """The arch recorded in the JSON card beside an embedded model's weights ("?" without one)."""
    try:
        return str(json.loads(path.with_suffix(".json").read_text(encoding="utf-8")).get("arch") or "?")
    except (OSError, ValueError):
        return "?"
