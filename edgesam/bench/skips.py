"""What a run did not measure, and why: kept beside the JSONL history, listed by the report.

Rows hold measurements only; combinations that were skipped (runtime not installed, precision
not available on this device) or failed are stored in ``<results_dir>/<device_id>.skipped.json``,
latest reason per (backend, precision, arch, size, model).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .results import ResultRow, ResultsDirError, parse_timestamp

__all__ = ["SKIP_SUFFIX", "load_skips", "open_skips", "record_skips"]

SKIP_SUFFIX = ".skipped.json"
_KEY = ("backend", "precision", "arch", "image_size", "model")


def _key(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(entry.get(k) for k in _KEY)


def load_skips(results_dir: str | os.PathLike[str]) -> dict[str, list[dict[str, Any]]]:
    """``device_id -> entries`` from every ``*.skipped.json`` in `results_dir` (missing: {})."""
    root = Path(results_dir)
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(root.glob(f"*{SKIP_SUFFIX}")) if root.is_dir() else []:
        try:
            out[path.name[: -len(SKIP_SUFFIX)]] = list(json.loads(path.read_text(encoding="utf-8")).get("entries", []))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not a valid skip record ({exc})") from exc
    return out


def record_skips(results_dir: str | os.PathLike[str], device_id: str,
                 entries: Iterable[Mapping[str, Any]]) -> Path | None:
    """Merge `entries` (dicts with the key fields plus ``reason``, ``timestamp``, ``commit``)
    into the device's skip file; returns its path (None when there is nothing to record).

    Raises:
        ResultsDirError: the file cannot be written.
    """
    new = [dict(e) for e in entries]
    if not new:
        return None
    path = Path(results_dir) / f"{device_id}{SKIP_SUFFIX}"
    merged = {_key(e): e for e in load_skips(results_dir).get(device_id, []) + new}
    body = {"device_id": device_id, "entries": sorted(merged.values(), key=lambda e: tuple(map(str, _key(e))))}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise ResultsDirError(exc.errno, f"cannot write skip record {str(path)!r}: {exc.strerror or exc}",
                              str(path)) from exc
    return path


def open_skips(entries: Sequence[Mapping[str, Any]], rows: Sequence[ResultRow]) -> list[Mapping[str, Any]]:
    """The entries of one device not superseded by a later measurement of the same combination."""
    last: dict[tuple[Any, ...], Any] = {}
    for row in rows:
        c = row.config
        key = (c.backend, c.precision, c.arch, c.image_size, c.extra.get("model"))
        last[key] = max(last.get(key, row.when), row.when)
    return [e for e in entries
            if _key(e) not in last or parse_timestamp(str(e.get("timestamp"))) > last[_key(e)]]
