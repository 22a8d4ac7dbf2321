"""``edgesam models``: the model zoo and embedded models."""

from __future__ import annotations

import argparse

from .grammar import Output, add_json


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list known checkpoints and where they are cached")
    add_json(p, help="print the list as JSON on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgesam.bundle.catalogue import ZOO, cache_dir, embedded_models

    lines, models = [], []
    for name, path in embedded_models().items():
        lines.append(f"{name:14s} embedded  {path}")
        models.append({"name": name, "embedded": True, "path": str(path)})
    for entry in ZOO.values():
        target = cache_dir() / entry.filename
        cached = target.is_file()
        lines.append(f"{entry.name:14s} {entry.arch:9s} {'cached' if cached else 'not cached':10s} "
                     f"{entry.summary}; license {entry.license}")
        models.append({"name": entry.name, "embedded": False, "arch": entry.arch, "cached": cached,
                       "path": str(target), "url": entry.url, "license": entry.license, "summary": entry.summary})
    lines.append(f"cache: {cache_dir()} (set EDGESAM_HOME to move it)")
    Output(args).result("\n".join(lines), {"models": models, "cache": str(cache_dir())})
    return 0
