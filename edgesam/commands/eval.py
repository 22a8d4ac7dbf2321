"""``edgesam eval``: mask mIoU against ground truth and against a teacher."""

from edgesam.distillation.cli import add_eval_parser as add_parser

__all__ = ["add_parser"]
