"""``edgesam models``: the model zoo and embedded models."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list known checkpoints and where they are cached")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from edgesam.bundle.catalogue import ZOO, cache_dir, embedded_models

    for name, path in embedded_models().items():
        print(f"{name:14s} embedded  {path}")
    for entry in ZOO.values():
        cached = (cache_dir() / entry.filename).is_file()
        print(f"{entry.name:14s} {entry.arch:9s} {'cached' if cached else 'not cached':10s} "
              f"{entry.summary}; license {entry.license}")
    print(f"cache: {cache_dir()} (set EDGESAM_HOME to move it)")
    return 0
