"""Teacher image embeddings computed once and kept on disk as fp16 shards.

Layout of a cache folder (one per teacher checkpoint and image size)::

    <root>/<teacher_hash[:16]>-s<S>/
        index.json              {"teacher": hash, "image_size": S, "shape": [C, h, w],
                                 "entries": {image_key: [shard, row, in_h, in_w]}, "failed": [...]}
        shard_00000.npy         float16 [n, C, h, w]
        ...

Shards are written whole, then the index is replaced atomically, so a run stopped at any
point keeps every completed shard; :meth:`TeacherCache.build` run again computes only the
images that are not in the index yet.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

__all__ = ["TeacherCache", "CacheBuildStats", "state_dict_hash", "image_key"]


def state_dict_hash(model: torch.nn.Module) -> str:
    """SHA-256 over a model's state dict (names, dtypes, shapes and bytes), as a hex string."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def image_key(path: str | os.PathLike[str]) -> str:
    """The cache key of an image: its absolute, normalised path (URIs such as ``synthetic://7`` as they are)."""
    text = os.fspath(path)
    return text if "://" in text else str(Path(text).resolve())


@dataclass
class CacheBuildStats:
    """What :meth:`TeacherCache.build` did."""

    computed: int = 0
    already_cached: int = 0
    failed: int = 0


class TeacherCache:
    """Disk cache of teacher embeddings for one (teacher, image size) pair.

    Args:
        root: parent folder; the cache lives in ``root/<hash[:16]>-s<S>``.
        teacher_hash: identifies the teacher weights (e.g. :func:`state_dict_hash` or the
            checkpoint file's sha256); a different teacher never reads these embeddings.
        image_size: the teacher's input side ``S``.
        shard_size: embeddings per shard file.
    """

    def __init__(self, root: str | os.PathLike[str], *, teacher_hash: str, image_size: int, shard_size: int = 256):
        if shard_size < 1:
            raise ValueError("shard_size must be >= 1")
        self.dir = Path(root) / f"{teacher_hash[:16]}-s{int(image_size)}"
        self.teacher_hash = teacher_hash
        self.image_size = int(image_size)
        self.shard_size = shard_size
        self._index = self._read_index()
        self._shards: dict[int, np.ndarray] = {}

    # -- index -----------------------------------------------------------------------------
    def _read_index(self) -> dict:
        path = self.dir / "index.json"
        if not path.is_file():
            return {"teacher": self.teacher_hash, "image_size": self.image_size, "shape": None,
                    "num_shards": 0, "entries": {}, "failed": []}
        index = json.loads(path.read_text())
        if index.get("teacher") != self.teacher_hash or int(index.get("image_size", -1)) != self.image_size:
            raise ValueError(f"cache at {self.dir} belongs to another teacher or image size")
        return index

    def _write_index(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / "index.json.tmp"
        tmp.write_text(json.dumps(self._index))
        os.replace(tmp, self.dir / "index.json")

    def __len__(self) -> int:
        return len(self._index["entries"])

    def __contains__(self, path: str | os.PathLike[str]) -> bool:
        return image_key(path) in self._index["entries"]

    @property
    def embedding_shape(self) -> tuple[int, int, int] | None:
        """``(C, h, w)`` of the cached embeddings, None while empty."""
        shape = self._index["shape"]
        return None if shape is None else tuple(shape)

    @property
    def failed(self) -> list[str]:
        """Images that could not be read while building (skipped, not cached)."""
        return list(self._index["failed"])

    # -- reading ---------------------------------------------------------------------------
    def get(self, path: str | os.PathLike[str]) -> tuple[np.ndarray, tuple[int, int]]:
        """Embedding float16 ``[C, h, w]`` of ``path`` and its input size ``(in_h, in_w)``.

        Raises ``KeyError`` when the image is not cached.
        """
        shard, row, in_h, in_w = self._index["entries"][image_key(path)]
        if shard not in self._shards:  # opened lazily, so the object pickles for DataLoader workers
            self._shards[shard] = np.load(self.dir / f"shard_{shard:05d}.npy", mmap_mode="r")
        return np.array(self._shards[shard][row]), (int(in_h), int(in_w))

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_shards"] = {}
        return state

    # -- building --------------------------------------------------------------------------
    def build(
        self,
        items: Iterable[tuple[str, torch.Tensor | None, tuple[int, int] | None]],
        encode: Callable[[torch.Tensor], torch.Tensor],
        *,
        batch_size: int = 8,
        stop_after: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> CacheBuildStats:
        """Compute and store the embeddings of every item not yet cached.

        Args:
            items: ``(path, image [3, S, S] normalised+padded or None if unreadable, input_size)``
                in a fixed order; unreadable items are counted and recorded as failed.
            encode: the teacher, ``[B, 3, S, S] -> [B, C, h, w]`` (called under ``no_grad``).
            stop_after: stop (as if interrupted) after this many newly computed images; only
                whole shards are kept, so at most ``shard_size - 1`` of them are lost.
            progress: called with the number of images handled so far.
        """
        stats = CacheBuildStats()
        pend_keys: list[tuple[str, int, int]] = []
        pend_imgs: list[torch.Tensor] = []
        buf_keys: list[tuple[str, int, int]] = []
        buf_embs: list[np.ndarray] = []
        failed = set(self._index["failed"])

        def run_batch() -> None:
            if not pend_imgs:
                return
            with torch.no_grad():
                emb = encode(torch.stack(pend_imgs)).float().cpu().numpy().astype(np.float16)
            buf_keys.extend(pend_keys)
            buf_embs.extend(list(emb))
            pend_keys.clear()
            pend_imgs.clear()
            while len(buf_keys) >= self.shard_size:
                self._flush(buf_keys[: self.shard_size], buf_embs[: self.shard_size])
                del buf_keys[: self.shard_size], buf_embs[: self.shard_size]

        handled = 0
        for path, image, input_size in items:
            handled += 1
            key = image_key(path)
            if key in self._index["entries"]:
                stats.already_cached += 1
            elif image is None or input_size is None:
                stats.failed += 1
                failed.add(key)
            else:
                if stop_after is not None and stats.computed >= stop_after:
                    break
                stats.computed += 1
                pend_keys.append((key, int(input_size[0]), int(input_size[1])))
                pend_imgs.append(image)
                if len(pend_imgs) >= batch_size:
                    run_batch()
            if progress is not None:
                progress(handled)
        else:
            run_batch()
            if buf_keys:
                self._flush(buf_keys, buf_embs)
        self._index["failed"] = sorted(failed)
        self._write_index()
        return stats

    def _flush(self, keys: Sequence[tuple[str, int, int]], embs: Sequence[np.ndarray]) -> None:
        shard = int(self._index["num_shards"])
        arr = np.stack(embs, 0).astype(np.float16)
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f"shard_{shard:05d}.tmp.npy"
        np.save(tmp, arr)
        os.replace(tmp, self.dir / f"shard_{shard:05d}.npy")
        for row, (key, in_h, in_w) in enumerate(keys):
            self._index["entries"][key] = [shard, row, in_h, in_w]
        self._index["shape"] = list(arr.shape[1:])
        self._index["num_shards"] = shard + 1
        self._write_index()
