"""What a run did not measure, and why: kept beside the JSONL history and shown in the report.

Rows hold measurements only; combinations that were skipped (runtime not installed, precision
not available on this device) or failed are stored in ``<results_dir>/<device_id>.skipped.json``,
latest reason per (backend, precision, arch, size, model). `write_bench_report` writes the
standard report (`edgesam.bench.report.write_report`) and appends a "Not measured" table per
device listing the entries newer than the last measurement of the same combination.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from .report import write_report
from .results import ResultRow, ResultsDirError, load_rows, parse_timestamp

__all__ = ["SKIP_SUFFIX", "load_skips", "record_skips", "write_bench_report"]

SKIP_SUFFIX = ".skipped.json"
_KEY = ("backend", "precision", "arch", "image_size", "model")


def _key(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(entry.get(k) for k in _KEY)


def load_skips(results_dir: str | os.PathLike[str]) -> dict[str, list[dict[str, Any]]]:
    """``device_id -> entries`` from every ``*.skipped.json`` in `results_dir` (missing: {})."""
    root = Path(results_dir)
    out: dict[str, list[dict[str, Any]]] = {}
    if not root.is_dir():
        return out
    for path in sorted(root.glob(f"*{SKIP_SUFFIX}")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: not a valid skip record ({exc})") from exc
        out[path.name[: -len(SKIP_SUFFIX)]] = list(data.get("entries", []))
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
    merged = {_key(e): e for e in load_skips(results_dir).get(device_id, [])}
    merged.update({_key(e): e for e in new})
    body = {"device_id": device_id,
            "entries": sorted(merged.values(), key=lambda e: tuple(str(v) for v in _key(e)))}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise ResultsDirError(exc.errno, f"cannot write skip record {str(path)!r}: "
                              f"{exc.strerror or exc}", str(path)) from exc
    return path


def _row_key(row: ResultRow) -> tuple[Any, ...]:
    c = row.config
    return (c.backend, c.precision, c.arch, c.image_size, c.extra.get("model"))


def _open_skips(entries: list[dict[str, Any]], rows: list[ResultRow]) -> list[dict[str, Any]]:
    """Entries not superseded by a later measurement of the same combination."""
    last: dict[tuple[Any, ...], Any] = {}
    for row in rows:
        key = _row_key(row)
        last[key] = max(last.get(key, row.when), row.when)
    keep = []
    for e in entries:
        measured = last.get(_key(e))
        if measured is None or parse_timestamp(str(e.get("timestamp"))) > measured:
            keep.append(e)
    return keep


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def skipped_markdown(device_id: str, entries: list[dict[str, Any]]) -> str:
    """Markdown table of the combinations not measured on `device_id`."""
    lines = [f"### Not measured on {device_id}", "",
             "| backend | precision | arch | size | model | reason | date |",
             "|---|---|---|---|---|---|---|"]
    for e in entries:
        cells = [e.get("backend"), e.get("precision"), e.get("arch"), e.get("image_size"),
                 e.get("model") or "", e.get("reason"), str(e.get("timestamp", ""))[:16].replace("T", " ")]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines + [""])


def write_bench_report(results_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                       plots: bool = True) -> list[Path]:
    """`write_report` plus the "Not measured" tables; returns the written paths (markdown first).

    Raises:
        ValueError: `results_dir` holds no result rows.
        ResultsDirError: `results_dir` exists but is not a folder.
    """
    root = Path(results_dir)
    if root.exists() and not root.is_dir():
        raise ResultsDirError(f"results path {str(root)!r} is not a folder")
    paths = write_report(root, out_dir, plots=plots)
    rows = load_rows(root)
    sections = []
    for dev, entries in sorted(load_skips(root).items()):
        still = _open_skips(entries, [r for r in rows if r.device_id == dev])
        if still:
            sections.append(skipped_markdown(dev, still))
    if sections:
        md = paths[0]
        md.write_text(md.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + "\n".join(sections),
                      encoding="utf-8")
    return paths
