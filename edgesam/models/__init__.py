"""Torch models of the SAM family; attribute names are the official checkpoint keys."""

from .registry import MODELS, ModelSpec, build_sam, get_spec, register_model
from .sam import Sam

__all__ = ["MODELS", "ModelSpec", "Sam", "build_sam", "get_spec", "register_model"]
