"""Reading an upload from a request: raw bytes or ``multipart/form-data``, with a size cap."""

from __future__ import annotations

from typing import AsyncGenerator

from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

__all__ = ["read_upload"]


async def _body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise HTTPException(400, "Content-Length is not a number") from None
        if declared > limit:
            raise HTTPException(413, f"upload of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise HTTPException(413, f"upload exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_upload(request: Request, limit: int) -> bytes:
    """The uploaded file's bytes: the body itself, or the first file part of a multipart form.

    Raises:
        HTTPException: 413 over ``limit`` bytes, 422 for an empty upload or a form without a file.
    """
    body = await _body(request, limit)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):

        async def stream() -> AsyncGenerator[bytes, None]:
            yield body
            yield b""

        try:
            form = await MultiPartParser(request.headers, stream(), max_files=1, max_fields=8).parse()
        except MultiPartException as exc:
            raise HTTPException(422, f"file: malformed multipart form ({exc.message})") from None
        files = [v for v in form.values() if isinstance(v, UploadFile)]
        if not files:
            raise HTTPException(422, "file: the multipart form holds no file part (send it as field 'file')")
        body = await files[0].read()
        await form.close()
    if not body:
        raise HTTPException(422, "image: the upload is empty")
    return body
