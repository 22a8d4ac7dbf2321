"""``edgesam distill [TEACHER] ...``: train a student encoder from a SAM teacher (see :mod:`edgesam.distillation`).

The parser and the run live in :mod:`edgesam.distillation.cli`; this module puts the command
into the CLI grammar: the teacher is the positional MODEL (old spelling ``--teacher``), ``-o``
is the short form of ``--out``. The summary printed is JSON.
"""

from __future__ import annotations

import argparse

from edgesam.distillation.cli import add_distill_parser

from .grammar import adopt_common, adopt_option, add_model

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = add_distill_parser(subparsers)
    adopt_option(p, "--teacher", dest="teacher", new="MODEL")
    add_model(p, required=False, dest="teacher", legacy=(), backend=False, runtime_options=False,
              note="the teacher: model name or checkpoint file (not needed with --demo)")
    adopt_common(p, "--threads", "-q/--quiet", out="output folder (re-run to resume); required except with --demo")
