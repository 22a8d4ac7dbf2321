"""Source text that makes ``import torch`` fail in a child Python: the runtime-only tests prepend it."""

BLOCK_TORCH = r"""
import importlib.abc, sys

class BlockTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: runtime-only test)", name=name)
        return None

sys.meta_path.insert(0, BlockTorch())
"""
