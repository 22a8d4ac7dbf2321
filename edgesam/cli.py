"""The ``edgesam`` command line: a thin dispatcher over :mod:`edgesam.commands`."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import warnings
from importlib import import_module
from typing import Callable, TextIO

# sub-command modules, each with add_parser(subparsers) setting func=run(args) -> int
# (one flag grammar: see edgesam.commands.grammar and the README's "Command-line grammar")
COMMANDS = ("segment", "export", "quantize", "deploy", "everything", "stream", "models", "bench", "demo", "distill",
            "eval", "serve")


def build_parser() -> argparse.ArgumentParser:
    from edgesam import __version__

    parser = argparse.ArgumentParser(prog="edgesam", description="Segment Anything on small machines.")
    parser.add_argument("--version", action="version", version=f"edgesam {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        import_module(f"edgesam.commands.{name}").add_parser(subparsers)
    return parser


# "-5,20" or "-5,20,1" or "-1.5e2,3,...": a comma-separated list of numbers, never an option name
_NUMBER_LIST = re.compile(r"^-[0-9.]+(e[-+]?\d+)?(,[-+]?[0-9.]+(e[-+]?\d+)?)+$", re.IGNORECASE)


def join_negative_values(argv: list[str]) -> list[str]:
    """``["--point", "-5,20"]`` -> ``["--point=-5,20"]``.

    argparse takes a value starting with ``-`` for an option unless it is one plain number, so
    ``--point -5,20`` would fail with "expected one argument" before the coordinates could be
    checked; joined, the value reaches the option's parser and its validation.
    """
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if (token.startswith("--") and "=" not in token and len(token) > 2
                and nxt is not None and _NUMBER_LIST.match(nxt)):
            out.append(f"{token}={nxt}")
            i += 2
            continue
        out.append(token)
        i += 1
    return out


def parse_args(argv: list[str]) -> argparse.Namespace:
    """``argv`` (without the program name) -> the command's namespace, old spellings still in it
    (:func:`edgesam.commands.grammar.finish` moves them). Usage errors exit 2 as argparse does."""
    from edgesam.commands.grammar import join_positionals, note_input, rewrite_argv

    parser = build_parser()
    args, extra = parser.parse_known_args(rewrite_argv(join_negative_values(list(argv)), parser))
    if extra:
        join_positionals(parser, args, extra)
    note_input(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (errors print one line, exit 2).

    Warnings print as one line each (``edgesam COMMAND: warning: ...``, no source line); with
    ``--json``, whatever a library prints on stdout goes to stderr so that stdout holds only the
    JSON document; a reader that closes stdout early (``| head -1``) ends the command quietly.
    """
    try:
        return _run(parse_args(sys.argv[1:] if argv is None else list(argv)))
    except BrokenPipeError:
        _silence_stdout()
        return 141  # as a command killed by SIGPIPE


def _run(args: argparse.Namespace) -> int:
    from edgesam.commands.grammar import finish

    command = "bench report" if args.command == "bench-report" else args.command
    with warnings.catch_warnings(), contextlib.ExitStack() as stack:
        warnings.showwarning = _one_line_warnings(command)
        if getattr(args, "_json_result", False) and getattr(args, "json", False):
            args._result_stream = sys.stdout  # Output.result writes the JSON here
            stack.enter_context(contextlib.redirect_stdout(sys.stderr))
        try:
            try:
                finish(args)
                return int(args.func(args) or 0)
            except ImportError as exc:
                from edgesam.torch_hint import is_torch_missing, torch_missing_error

                if not is_torch_missing(exc):
                    raise
                model = getattr(args, "model", None)
                what = f"model {model}" if model else f"edgesam {command}"
                raise torch_missing_error(what, exc) from exc
        except (ValueError, TypeError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
                PermissionError, ImportError, RuntimeError) as exc:
            print(f"edgesam {command}: error: {exc}", file=sys.stderr)
            return 2


def _one_line_warnings(command: str) -> Callable[..., None]:
    """A ``warnings.showwarning`` printing ``edgesam COMMAND: warning: MESSAGE`` (no file, no source line)."""

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:  # fmt: skip
        print(f"edgesam {command}: warning: {message}", file=sys.stderr, flush=True)

    return show


def _silence_stdout() -> None:
    """After a broken pipe: point stdout at /dev/null so that the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (e.g. captured in tests)
        pass
