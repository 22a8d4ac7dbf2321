"""The ASGI application: :func:`create_app` wires the engine, the routes, auth, errors and metrics."""

from __future__ import annotations

import hmac
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from edgesam.serve.config import ServeConfig
from edgesam.serve.engine import Engine, QueueFull
from edgesam.serve.images import ImageError
from edgesam.serve.limits import BodyLimit
from edgesam.serve.metrics import CONTENT_TYPE_LATEST, ServeMetrics
from edgesam.serve.routes import router

__all__ = ["create_app", "model_info"]

STATIC = Path(__file__).resolve().parent / "static"
_OPEN = ("/", "/healthz", "/docs", "/openapi.json", "/docs/oauth2-redirect", "/redoc")
_CSP = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; connect-src 'self'"
log = logging.getLogger("edgesam.serve")


def model_info(backend: Any, name: str, embedding_shape: tuple[int, ...]) -> tuple[dict[str, Any], Path | None]:
    """What a client needs to decode embeddings itself, and the decoder file to serve (or None)."""
    size = int(backend.image_size)
    info: dict[str, Any] = {
        "name": name,
        "backend": getattr(backend, "name", type(backend).__name__),
        "image_size": size,
        "embedding_shape": list(embedding_shape),
        "pixel_mean": [float(v) for v in backend.pixel_mean],
        "pixel_std": [float(v) for v in backend.pixel_std],
        "mask_threshold": float(backend.mask_threshold),
        "preprocessing": (
            f"RGB; resize so the longest side is {size} (bilinear); subtract pixel_mean, divide by pixel_std; "
            f"pad bottom/right with zeros to {size}x{size}. Prompt coordinates: (x, y) * {size} / max(H, W)."
        ),
    }
    decoder = None
    bundle = getattr(backend, "bundle", None)
    if bundle is not None:
        root = Path(bundle.root)
        sam_style = (root / "decoder_sam.onnx").is_file()
        decoder = root / ("decoder_sam.onnx" if sam_style else "decoder.onnx")
        info["bundle"] = {
            "arch": bundle.arch,
            "precision": bundle.metadata.get("precision"),
            "decoder_file": decoder.name,
            "decoder_interface": "segment_anything ONNX (SamOnnxModel)" if sam_style else "edgesam decoder.onnx",
            "decoder_url": "/v1/model/decoder",
        }
    return info, decoder


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p != "body"]
            msg = str(err.get("msg", "invalid"))
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, "):]
            parts.append(f"{'.'.join(loc)}: {msg}" if loc else msg)
        return JSONResponse({"detail": "; ".join(parts), "errors": _safe_errors(exc)}, status_code=422)

    @app.exception_handler(ImageError)
    async def _image(_: Request, exc: ImageError) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.exception_handler(QueueFull)
    async def _busy(_: Request, exc: QueueFull) -> JSONResponse:
        app.state.metrics.rejected.inc()
        return _error(503, str(exc), {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return _error(500, f"internal error: {type(exc).__name__}")


def _safe_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg")), "type": str(e.get("type"))}
            for e in exc.errors()]


def _install_middleware(app: FastAPI, config: ServeConfig, metrics: ServeMetrics) -> None:
    @app.middleware("http")
    async def _auth_and_metrics(request: Request, call_next: Any) -> Response:
        start = time.perf_counter()
        path = request.url.path
        if config.api_key is not None and path not in _OPEN and not path.startswith("/static/"):
            given = request.headers.get("authorization", "")
            scheme, _, token = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), config.api_key.encode()):
                response: Response = _error(401, "missing or wrong API key (send Authorization: Bearer KEY)",
                                            {"WWW-Authenticate": "Bearer"})
                metrics.requests.labels(request.method, "unauthorized", "401").inc()
                return response
        response = await call_next(request)
        route = request.scope.get("route")
        label = getattr(route, "path", None) or ("/static" if path.startswith("/static/") else "unmatched")
        metrics.requests.labels(request.method, label, str(response.status_code)).inc()
        metrics.request_seconds.labels(label).observe(time.perf_counter() - start)
        return response


def create_app(backend: Any, config: ServeConfig | None = None) -> FastAPI:
    """The server for ``backend`` (a runtime backend or a torch ``Sam`` model).

    Routes: ``/`` (web page), ``/healthz``, ``/metrics``, ``/v1/model``, ``/v1/model/decoder``,
    ``/v1/images`` and ``/v1/images/{id}[/masks|/everything|/embedding]``; OpenAPI docs at ``/docs``.
    The worker threads stop when the application shuts down.
    """
    from edgesam import __version__

    config = config or ServeConfig()
    engine = Engine(backend=backend, cache_bytes=config.cache_bytes, encode_workers=config.encode_workers,
                    decode_workers=config.decode_workers, queue_size=config.queue_size,
                    max_pixels=config.max_pixels)
    metrics = ServeMetrics(engine.cache, lambda: engine.queue_depth)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        engine.close()

    app = FastAPI(title="edgesam", version=__version__, lifespan=lifespan,
                  description="Segment Anything over HTTP: upload an image once, then ask for masks per click.")
    app.state.engine = engine
    app.state.config = config
    app.state.metrics = metrics
    app.state.model_info, app.state.decoder_path = model_info(engine.backend, config.model_name,
                                                                      engine.warm_up())
    app.state.model_info["limits"] = {"max_upload_bytes": config.max_upload_bytes, "max_pixels": config.max_pixels,
                                      "cache_bytes": config.cache_bytes, "auth": config.api_key is not None}
    _install_handlers(app)
    _install_middleware(app, config, metrics)
    app.include_router(router)
    # outermost: caps every body (an upload's own check answers with a more precise message)
    app.add_middleware(BodyLimit, max_bytes=config.max_upload_bytes + (64 << 10))

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "model": config.model_name, "backend": app.state.model_info["backend"]}

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": _CSP,
                                                           "Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


