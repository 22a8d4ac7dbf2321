"""The ``/v1`` API routes (see :func:`edgesam.serve.create_app`)."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import time
from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from edgesam.io import json_safe
from edgesam.serve.cache import CachedImage
from edgesam.serve.encoders import encode_mask
from edgesam.serve.engine import Engine
from edgesam.serve.images import decode_image
from edgesam.serve.schemas import EverythingRequest, MasksRequest, decode_mask_input
from edgesam.serve.uploads import read_upload

__all__ = ["router"]

router = APIRouter(prefix="/v1")
_ID = re.compile(r"^[0-9a-f]{64}$")
_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "image/png": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "image/webp": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}
            },
        },
    }
}


def _engine(request: Request) -> Engine:
    return request.app.state.engine


def _entry(engine: Engine, image_id: str) -> CachedImage:
    if not _ID.match(image_id):
        raise HTTPException(422, "image_id: expected the 64 hex digits returned by POST /v1/images")
    entry = engine.cache.get(image_id)
    if entry is None:
        raise HTTPException(404, f"image_id: no image {image_id} (never uploaded, or evicted from the cache)")
    return entry


def _image_doc(entry: CachedImage, cached: bool) -> dict[str, Any]:
    height, width = entry.original_size
    return {"image_id": entry.image_id, "width": width, "height": height,
            "encode_ms": round(entry.encode_seconds * 1e3, 3), "cached": cached}


@router.post("/images", openapi_extra=_UPLOAD_DOC, summary="Upload an image (PNG/JPEG/WebP) and encode it")
async def upload_image(request: Request) -> JSONResponse:
    """Raw bytes or a multipart form (field ``file``) -> ``image_id`` (sha256 of the bytes)."""
    engine = _engine(request)
    data = await read_upload(request, request.app.state.config.max_upload_bytes)
    image_id = engine.image_id(data)
    hit = engine.cache.get(image_id)
    if hit is not None:
        return JSONResponse(_image_doc(hit, True))
    future = engine.submit_encode_job(lambda: engine.encode(data, image_id))
    entry = await asyncio.wrap_future(future)
    request.app.state.metrics.encode_seconds.observe(entry.encode_seconds)
    return JSONResponse(_image_doc(entry, False), status_code=201)


@router.get("/images/{image_id}", summary="Size of an uploaded image (404 when not cached)")
async def image_info(image_id: str, request: Request) -> JSONResponse:
    return JSONResponse(_image_doc(_entry(_engine(request), image_id), True))


def _run_masks(engine: Engine, entry: CachedImage, body: MasksRequest) -> dict[str, Any]:
    predictor = engine.predictor(entry)
    mask_input = None
    if body.mask_input is not None:
        _, _, h, w = entry.features.shape
        mask_input = decode_mask_input(body.mask_input, (4 * h, 4 * w))
    start = time.perf_counter()
    if body.boxes is not None:
        masks, scores, low_res = predictor.predict_batch(boxes=np.asarray(body.boxes, dtype=np.float64),
                                                         multimask_output=body.multimask)
    else:
        points = None if body.points is None else np.asarray(body.points, dtype=np.float64)
        labels = None if body.labels is None else np.asarray(body.labels, dtype=np.int64)
        box = None if body.box is None else np.asarray(body.box, dtype=np.float64)
        m, s, lr = predictor.predict(point_coords=points, point_labels=labels, box=box,
                                     mask_input=mask_input, multimask_output=body.multimask)
        masks, scores, low_res = m[None], s[None], lr[None]
    decode_seconds = time.perf_counter() - start
    doc: dict[str, Any] = {
        "image_id": entry.image_id,
        "format": body.format,
        "size": list(entry.original_size),
        "masks": [[encode_mask(m, body.format) for m in prompt] for prompt in masks],
        "scores": np.round(scores.astype(np.float64), 6).tolist(),
        "areas": masks.sum(axis=(2, 3)).tolist(),
        "decode_ms": round(decode_seconds * 1e3, 3),
    }
    if body.return_mask_input:
        doc["mask_inputs"] = [
            [base64.b64encode(np.ascontiguousarray(c[None], dtype="<f4").tobytes()).decode("ascii") for c in prompt]
            for prompt in low_res
        ]
    return doc


@router.post("/images/{image_id}/masks", summary="Masks for points / a box / many boxes / a mask input")
async def predict_masks(image_id: str, body: MasksRequest, request: Request) -> JSONResponse:
    """``masks[p][c]`` is candidate ``c`` of prompt ``p`` (one prompt unless ``boxes``), with ``scores[p][c]``."""
    engine = _engine(request)
    entry = _entry(engine, image_id)
    start = time.perf_counter()
    try:
        doc = await asyncio.wrap_future(engine.submit_decode_job(lambda: _run_masks(engine, entry, body)))
    except (ValueError, TypeError) as exc:  # prompts the predictor refuses
        raise HTTPException(422, str(exc)) from None
    request.app.state.metrics.decode_seconds.observe(doc["decode_ms"] / 1e3)
    doc["server_ms"] = round((time.perf_counter() - start) * 1e3, 3)
    return JSONResponse(doc)


def _run_everything(engine: Engine, entry: CachedImage, body: EverythingRequest) -> dict[str, Any]:
    """The masks (SAM records, COCO RLE), the thresholds used, and why there are none when so."""
    from edgesam.everything import SamAutomaticMaskGenerator

    image = decode_image(entry.data, max_pixels=engine.max_pixels)
    generator = SamAutomaticMaskGenerator(engine.predictor(entry, image), output_mode="coco_rle", **body.model_dump())
    records = json_safe(generator.generate(image))
    stats = generator.last_stats
    return {"count": len(records), "masks": records,
            "thresholds": generator.thresholds(),
            "no_masks_because": stats.explain() if stats is not None and not records else None}


@router.post("/images/{image_id}/everything", summary="Segment everything (SAM-style records, COCO RLE)")
async def everything(image_id: str, request: Request, body: EverythingRequest | None = None) -> JSONResponse:
    engine = _engine(request)
    entry = _entry(engine, image_id)
    body = body or EverythingRequest()
    start = time.perf_counter()
    result = await asyncio.wrap_future(engine.submit_encode_job(lambda: _run_everything(engine, entry, body)))
    seconds = time.perf_counter() - start
    request.app.state.metrics.everything_seconds.observe(seconds)
    return JSONResponse({"image_id": entry.image_id, "size": list(entry.original_size), **result,
                         "everything_ms": round(seconds * 1e3, 3)})


@router.get("/images/{image_id}/embedding", summary="The image embedding as a .npy file (float32 [1, C, h, w])")
async def embedding(image_id: str, request: Request) -> Response:
    entry = _entry(_engine(request), image_id)
    buffer = io.BytesIO()
    np.save(buffer, entry.features)
    height, width = entry.original_size
    return Response(buffer.getvalue(), media_type="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="{image_id[:16]}.npy"',
        "X-Original-Size": f"{height},{width}", "X-Input-Size": "{},{}".format(*entry.input_size)})


@router.get("/model", summary="Model, backend, preprocessing and the decoder file for local decoding")
async def model_info(request: Request) -> JSONResponse:
    return JSONResponse(request.app.state.model_info)


@router.get("/model/decoder", summary="The bundle's decoder ONNX file (for decoding embeddings locally)")
async def model_decoder(request: Request) -> Response:
    path = request.app.state.decoder_path  # fixed at start-up; no client-supplied path
    if path is None:
        raise HTTPException(404, "this server runs a torch model, not a bundle: no decoder file to serve")
    return FileResponse(path, media_type="application/octet-stream", filename=path.name)

