"""``edgesam distill``: train a student encoder from a SAM teacher (see :mod:`edgesam.distillation`)."""

from edgesam.distillation.cli import add_distill_parser as add_parser

__all__ = ["add_parser"]
