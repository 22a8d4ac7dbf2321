"""Moved to :mod:`edgesam.prompt_geometry` (a leaf module); this name stays for old imports."""

from edgesam.prompt_geometry import PromptBatch, sample_prompts

__all__ = ["PromptBatch", "sample_prompts"]
