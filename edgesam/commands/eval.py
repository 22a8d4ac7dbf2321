"""``edgesam eval MODEL ...``: mask mIoU against ground truth and against a teacher.

The parser and the run live in :mod:`edgesam.distillation.cli`; this module puts the command
into the CLI grammar: the model is the positional MODEL (old spelling ``--model``).
"""

from __future__ import annotations

import argparse

from edgesam.distillation.cli import add_eval_parser

from .grammar import adopt_common, adopt_option, add_model

__all__ = ["add_parser"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = add_eval_parser(subparsers)
    adopt_option(p, "--model", dest="model", new="MODEL")
    add_model(p, required=True, legacy=(), backend=False, runtime_options=False,
              note="model name or checkpoint file")
    adopt_common(p, "--threads", "--json")
