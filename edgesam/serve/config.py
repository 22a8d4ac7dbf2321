"""Settings of one server."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ServeConfig"]


@dataclass(frozen=True, kw_only=True)
class ServeConfig:
    """Limits and options of :func:`edgesam.serve.create_app`.

    Attributes:
        cache_mb: embedding cache budget (embeddings + the uploaded files), MiB.
        max_upload_mb: largest accepted upload (413 above), MiB.
        max_pixels: largest accepted image, height x width (422 above).
        encode_workers: threads running the encoder (and segment-everything).
        decode_workers: threads running the prompt decoder.
        queue_size: encodes allowed to wait; more are refused with 503 + Retry-After.
        api_key: when set, every API route needs ``Authorization: Bearer <api_key>`` (401).
        model_name: shown by ``/v1/model`` and the page.
    """

    cache_mb: float = 512.0
    max_upload_mb: float = 20.0
    max_pixels: int = 40_000_000
    encode_workers: int = 1
    decode_workers: int = 2
    queue_size: int = 4
    api_key: str | None = None
    model_name: str = "model"

    def __post_init__(self) -> None:
        if self.cache_mb < 0 or self.max_upload_mb <= 0 or self.max_pixels <= 0:
            raise ValueError("cache_mb must be >= 0, max_upload_mb and max_pixels > 0")
        if self.encode_workers < 1 or self.decode_workers < 1 or self.queue_size < 0:
            raise ValueError("encode_workers and decode_workers must be >= 1, queue_size >= 0")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key must not be empty")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * (1 << 20))

    @property
    def cache_bytes(self) -> int:
        return int(self.cache_mb * (1 << 20))
