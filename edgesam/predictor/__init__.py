"""Numpy + OpenCV predictor (no torch import): SAM's ``SamPredictor`` over any backend."""

from edgesam.predictor.predictor import SamPredictor

__all__ = ["SamPredictor"]
