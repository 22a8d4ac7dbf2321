"""Teacher image embeddings computed once and kept on disk as a dataset of their own.

One cache folder per (teacher checkpoint, image size, preprocessing, storage format), reusable
by any student and any run::

    <cache_dir>/<teacher_hash[:16]>-s<S>-<preprocessing id>-<storage>/
        r000-000000.bin / .json     shard: the bytes of up to ``shard_size`` embeddings + its manifest
        r001-000000.bin / .json     (one series of shards per rank that computed them)
        failed-r000.json            files that could not be read, with the reason
        index.json                  all manifests merged (written by rank 0 after a build)

Images are keyed by the sha256 of their bytes (:func:`content_key`), not their path, so a
renamed or copied folder hits the cache. Only the valid (unpadded) region of the embedding grid
is stored (``ceil(h/16) x ceil(w/16)`` cells of the ``S/16`` grid for a resized image of
``h x w``); :meth:`TeacherCache.get` returns the full grid with the padding cells zero.

Storage formats: ``fp16`` (2 bytes per value) or ``int8`` (1 byte per value plus one float32
scale per channel, symmetric, per image). A shard's ``.bin`` is renamed into place before its
``.json`` manifest, and the manifest is the commit: an interrupt loses at most the shard being
written, and a build run again computes only what no manifest lists.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = ["TeacherCache", "CacheBuildStats", "CacheItem", "state_dict_hash", "content_key",
           "is_out_of_memory", "PREPROCESSING", "STORAGE_FORMATS"]

#: Identifies the model input the embeddings were computed from (see :mod:`.datasets`): RGB, longest
#: side resized to S (Pillow-compatible antialiased bilinear), SAM mean/std, zero padded bottom/right.
PREPROCESSING = "rgb-longest-aa-bilinear-meanstd-padbr-v1"
STORAGE_FORMATS = ("fp16", "int8")
_SHARD = re.compile(r"^r(\d+)-(\d+)\.json$")


def state_dict_hash(model: torch.nn.Module) -> str:
    """SHA-256 over a model's state dict (names, dtypes, shapes and bytes), as a hex string."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def content_key(data: bytes) -> str:
    """The cache key of an image: the sha256 of its encoded bytes (or of its raw pixels)."""
    return hashlib.sha256(data).hexdigest()


def is_out_of_memory(exc: BaseException) -> bool:
    """True for ``torch.OutOfMemoryError`` and for RuntimeErrors saying "out of memory"."""
    oom_type = getattr(torch, "OutOfMemoryError", None)
    return (oom_type is not None and isinstance(exc, oom_type)) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def _write_atomic(path: Path, data: str | bytes) -> Path:
    """Write ``data`` to ``path.tmp``, then rename it to ``path`` (readers never see half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(data, bytes):
        tmp.write_bytes(data)
    else:
        tmp.write_text(data)
    os.replace(tmp, path)
    return path


@dataclass
class CacheItem:
    """One image offered to :meth:`TeacherCache.build`.

    ``key`` is its :func:`content_key` (None when the file could not be read); ``image`` the
    model input float32 ``[3, S, S]`` (None when it could not be decoded, or when ``key`` is
    cached already and decoding was skipped); ``input_size`` the resized ``(h, w)``.
    """

    key: str | None
    name: str
    image: torch.Tensor | None = None
    input_size: tuple[int, int] | None = None
    error: str = "unreadable"


@dataclass
class CacheBuildStats:
    """What :meth:`TeacherCache.build` did (this process only; see :meth:`merge_stats`)."""

    computed: int = 0
    already_cached: int = 0
    failed: int = 0
    failed_files: list[str] = field(default_factory=list)
    batch_size: int = 0
    shards_written: int = 0

    def merge_stats(self, others: Iterable[CacheBuildStats]) -> CacheBuildStats:
        """Sum over ranks (``failed_files`` united, smallest batch size)."""
        out = CacheBuildStats(**{**vars(self), "failed_files": list(self.failed_files)})
        for o in others:
            out.computed += o.computed
            out.already_cached += o.already_cached
            out.shards_written += o.shards_written
            out.failed_files = sorted(set(out.failed_files) | set(o.failed_files))
            out.batch_size = min(out.batch_size, o.batch_size) if out.batch_size and o.batch_size else \
                out.batch_size or o.batch_size
        out.failed = len(out.failed_files)
        return out


class TeacherCache:
    """Disk cache of teacher embeddings for one (teacher, image size, preprocessing, storage).

    Args:
        root: the cache folder (``--cache-dir``); this cache lives in a sub-folder named by the key.
        teacher_hash: identifies the teacher weights (:func:`edgesam.bundle.sha256_file` of the checkpoint, or
            :func:`state_dict_hash`); a different teacher never reads these embeddings.
        image_size: the teacher's input side ``S``.
        shard_size: embeddings per shard file (an interrupt loses at most one shard).
        storage: ``"fp16"`` or ``"int8"`` (per-channel scale).
        rank: the writer's global rank (names its shard series).
    """

    def __init__(self, root: str | os.PathLike[str], *, teacher_hash: str, image_size: int, shard_size: int = 16,
                 storage: str = "fp16", preprocessing: str = PREPROCESSING, rank: int = 0):
        if shard_size < 1:
            raise ValueError("shard_size must be >= 1")
        if storage not in STORAGE_FORMATS:
            raise ValueError(f"unknown cache storage {storage!r}; use one of {', '.join(STORAGE_FORMATS)}")
        self.teacher_hash, self.image_size, self.preprocessing = teacher_hash, int(image_size), preprocessing
        self.shard_size, self.storage, self.rank = shard_size, storage, int(rank)
        self.dir = Path(root) / f"{teacher_hash[:16]}-s{self.image_size}-{preprocessing}-{storage}"
        self.entries: dict[str, list] = {}  # key -> [shard, offset, nbytes, h, w, in_h, in_w]
        self.failed_files: dict[str, str] = {}
        self.channels: int | None = None
        self._merged: set[str] = set()
        self._maps: dict[str, np.ndarray] = {}
        self._keys: dict[int, tuple[object, list[str | None]]] = {}
        self._seq: int | None = None
        self.refresh()

    # -- reading the folder ----------------------------------------------------------------
    def _header(self) -> dict:
        return {"teacher": self.teacher_hash, "image_size": self.image_size, "preprocessing": self.preprocessing,
                "storage": self.storage}

    def refresh(self) -> None:
        """Re-read ``index.json`` and every shard manifest not merged into it (other ranks' work)."""
        index_path = self.dir / "index.json"
        if index_path.is_file():
            index = json.loads(index_path.read_text())
            if {k: index.get(k) for k in self._header()} != self._header():
                raise ValueError(f"cache at {self.dir} belongs to another teacher, image size or format")
            self.entries.update(index["entries"])
            self.failed_files.update(index.get("failed", {}))
            self.channels = index.get("channels", self.channels)
            self._merged |= set(index.get("shards", []))
        if not self.dir.is_dir():
            return
        for manifest in sorted(self.dir.glob("r*-*.json")):
            shard = manifest.stem
            if shard in self._merged or not _SHARD.match(manifest.name):
                continue
            data = json.loads(manifest.read_text())
            if data.get("teacher") != self.teacher_hash:
                raise ValueError(f"shard {manifest} belongs to another teacher")
            self.channels = data["channels"]
            for key, offset, nbytes, h, w, in_h, in_w in data["entries"]:
                self.entries[key] = [shard, offset, nbytes, h, w, in_h, in_w]
            self._merged.add(shard)
        for failed in self.dir.glob("failed-r*.json"):
            self.failed_files.update(json.loads(failed.read_text()))

    def merge(self) -> Path:
        """Write ``index.json`` from every manifest (rank 0, after all ranks finished; atomic)."""
        self.refresh()
        index = {**self._header(), "channels": self.channels, "grid": self.image_size // 16,
                 "shards": sorted(self._merged), "entries": self.entries, "failed": self.failed_files}
        self.dir.mkdir(parents=True, exist_ok=True)
        return _write_atomic(self.dir / "index.json", json.dumps(index))

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    @property
    def embedding_shape(self) -> tuple[int, int, int] | None:
        """``(C, S/16, S/16)`` of the embeddings :meth:`get` returns, None while empty."""
        return None if self.channels is None else (self.channels, self.image_size // 16, self.image_size // 16)

    @property
    def failed(self) -> list[str]:
        """Files that could not be read while building (skipped, not cached)."""
        return sorted(self.failed_files)

    def bytes_per_image(self) -> float:
        """Mean stored bytes per cached embedding (shard data only)."""
        return sum(e[2] for e in self.entries.values()) / max(1, len(self.entries))

    def get(self, key: str) -> tuple[np.ndarray, tuple[int, int]]:
        """Embedding float16 ``[C, S/16, S/16]`` (padding cells zero) and the input size ``(in_h, in_w)``.

        Raises ``KeyError`` when the image is not cached.
        """
        shard, offset, nbytes, h, w, in_h, in_w = self.entries[key]
        if shard not in self._maps:  # opened lazily, so the object pickles for DataLoader workers
            self._maps[shard] = np.memmap(self.dir / f"{shard}.bin", dtype=np.uint8, mode="r")
        raw = np.asarray(self._maps[shard][offset : offset + nbytes])
        c, g = int(self.channels or 0), self.image_size // 16
        out = np.zeros((c, g, g), np.float16)
        if self.storage == "fp16":
            out[:, :h, :w] = raw.view(np.float16).reshape(c, h, w)
        else:
            scale = raw[: 4 * c].view(np.float32)
            q = raw[4 * c :].view(np.int8).reshape(c, h, w)
            out[:, :h, :w] = (q.astype(np.float32) * scale[:, None, None]).astype(np.float16)
        return out, (int(in_h), int(in_w))

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_maps"] = {}
        state["_keys"] = {}
        return state

    def remember_keys(self, dataset: object, keys: list[str | None]) -> None:
        """Keep the per-item keys of ``dataset`` (computed while building) for :meth:`keys_of`."""
        self._keys[id(dataset)] = (dataset, keys)

    def keys_of(self, dataset: object) -> list[str | None] | None:
        """The keys :meth:`remember_keys` kept for this very dataset object, else None."""
        entry = self._keys.get(id(dataset))
        return entry[1] if entry is not None and entry[0] is dataset else None

    # -- writing ---------------------------------------------------------------------------
    def _encode_entry(self, emb: np.ndarray, in_h: int, in_w: int) -> tuple[bytes, int, int]:
        h, w = min(emb.shape[1], math.ceil(in_h / 16)), min(emb.shape[2], math.ceil(in_w / 16))
        valid = np.ascontiguousarray(emb[:, :h, :w], dtype=np.float32)
        if self.storage == "fp16":
            return valid.astype(np.float16).tobytes(), h, w
        scale = np.abs(valid).reshape(len(valid), -1).max(1) / 127.0
        scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
        q = np.clip(np.rint(valid / scale[:, None, None]), -127, 127).astype(np.int8)
        return scale.tobytes() + q.tobytes(), h, w

    def _next_shard(self) -> int:
        if self._seq is None:  # scanned once per build, then counted
            seqs = [int(m.group(2)) for p in self.dir.glob(f"r{self.rank:03d}-*.*")
                    if (m := re.match(r"^r(\d+)-(\d+)\.", p.name))]
            self._seq = max(seqs, default=-1) + 1
        self._seq += 1
        return self._seq - 1

    def _write_shard(self, rows: list[tuple[str, np.ndarray, int, int]]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        shard = f"r{self.rank:03d}-{self._next_shard():06d}"
        blobs, entries, offset = [], [], 0
        for key, emb, in_h, in_w in rows:
            blob, h, w = self._encode_entry(emb, in_h, in_w)
            entries.append([key, offset, len(blob), h, w, in_h, in_w])
            blobs.append(blob)
            offset += len(blob)
        _write_atomic(self.dir / f"{shard}.bin", b"".join(blobs))
        self.channels = int(rows[0][1].shape[0])
        manifest = {**self._header(), "channels": self.channels, "entries": entries}
        _write_atomic(self.dir / f"{shard}.json", json.dumps(manifest))  # the commit point
        for key, off, nbytes, h, w, in_h, in_w in entries:
            self.entries[key] = [shard, off, nbytes, h, w, in_h, in_w]
        self._merged.add(shard)

    def _write_failed(self, failed: dict[str, str]) -> None:
        if not failed:
            return
        path = self.dir / f"failed-r{self.rank:03d}.json"
        old = json.loads(path.read_text()) if path.is_file() else {}
        self.dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, json.dumps({**old, **failed}))
        self.failed_files.update(failed)

    def build(
        self,
        items: Iterable[CacheItem],
        encode: Callable[[torch.Tensor], torch.Tensor],
        *,
        batch_size: int = 1,
        stop_after: int | None = None,
        on_shard: Callable[[int], None] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> CacheBuildStats:
        """Compute and store the embeddings of every item not cached yet.

        Args:
            items: :class:`CacheItem` s in a fixed order.
            encode: the teacher, ``[B, 3, S, S] -> [B, C, S/16, S/16]`` (called without grad).
                On out-of-memory (:func:`is_out_of_memory`) the batch is halved for the rest of
                the build and the failed batch is retried; at batch 1 the error propagates.
            stop_after: stop (as if interrupted) after this many newly computed images.
            on_shard: called with the number of shards written so far after each shard.
            progress: called with the number of items handled so far.
        """
        stats = CacheBuildStats(batch_size=batch_size)
        self._seq = None
        pending: list[tuple[str, torch.Tensor, int, int]] = []
        rows: list[tuple[str, np.ndarray, int, int]] = []
        failed: dict[str, str] = {}

        def run(batch: list[tuple[str, torch.Tensor, int, int]]) -> None:
            try:
                with torch.inference_mode():
                    emb = encode(torch.stack([b[1] for b in batch])).float().cpu().numpy()
            except (RuntimeError, MemoryError) as exc:
                if not is_out_of_memory(exc) or len(batch) == 1:
                    raise
                stats.batch_size = max(1, len(batch) // 2)
                print(f"teacher cache: out of memory at batch {len(batch)}; continuing with batch "
                      f"{stats.batch_size}", file=sys.stderr)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                for i in range(0, len(batch), stats.batch_size):
                    run(batch[i : i + stats.batch_size])
                return
            rows.extend((key, e, in_h, in_w) for (key, _, in_h, in_w), e in zip(batch, emb))
            while len(rows) >= self.shard_size:
                self._write_shard(rows[: self.shard_size])
                del rows[: self.shard_size]
                stats.shards_written += 1
                if on_shard is not None:
                    on_shard(stats.shards_written)

        handled = 0
        seen: set[str] = set()
        try:
            for item in items:
                handled += 1
                if item.key is not None and (item.key in self.entries or item.key in seen):
                    stats.already_cached += 1
                elif item.key is None or item.image is None or item.input_size is None:
                    failed[item.name] = item.error
                else:
                    if stop_after is not None and stats.computed >= stop_after:
                        break
                    stats.computed += 1
                    seen.add(item.key)
                    pending.append((item.key, item.image, int(item.input_size[0]), int(item.input_size[1])))
                    if len(pending) >= stats.batch_size:
                        run(pending)
                        pending = []
                if progress is not None:
                    progress(handled)
            if pending:
                run(pending)
            if rows:
                self._write_shard(rows)
                stats.shards_written += 1
        finally:
            self._write_failed(failed)
        stats.failed_files = sorted(failed)
        stats.failed = len(failed)
        return stats
