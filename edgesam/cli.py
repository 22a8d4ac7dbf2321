"""The ``edgesam`` command line: a thin dispatcher over :mod:`edgesam.commands`."""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

# sub-command modules, each with add_parser(subparsers) setting func=run(args) -> int
COMMANDS = ("segment", "export", "quantize", "deploy", "everything", "stream", "models", "bench", "demo", "distill", "eval")


def build_parser() -> argparse.ArgumentParser:
    from edgesam import __version__

    parser = argparse.ArgumentParser(prog="edgesam", description="Segment Anything on small machines.")
    parser.add_argument("--version", action="version", version=f"edgesam {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        import_module(f"edgesam.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (errors print one line, exit 2)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, ImportError, RuntimeError) as exc:
        print(f"edgesam {args.command}: error: {exc}", file=sys.stderr)
        return 2
