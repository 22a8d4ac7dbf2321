"""``edgesam serve``: the HTTP API and the click-to-segment web page.

    edgesam serve [--bundle B | --checkpoint C] [--backend NAME] [--host 127.0.0.1] [--port 8000]
                  [--threads N] [--cache-mb 512] [--api-key KEY]

Without a model argument it serves the embedded ``edgesam-demo`` (offline).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from typing import Any

__all__ = ["add_parser", "exposure_warning", "run"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve", help="HTTP API + click-to-segment web page (default model: the embedded edgesam-demo)",
        description="Serves the model over HTTP: POST an image once (its embedding is cached), then ask for "
                    "masks per click, box or for everything; the page at / does it in a browser.")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", help="checkpoint file or model name (default: the embedded edgesam-demo)")
    source.add_argument("--bundle", help="exported bundle folder")
    p.add_argument("--backend", default="onnxruntime", help="runtime for --bundle (default onnxruntime)")
    p.add_argument("--device", default="cpu", help="torch device for --checkpoint")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; anything else is reachable from the network: "
                        "use --api-key)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0 picks a free one)")
    p.add_argument("--threads", type=int, help="intra-op threads of the runtime (default: its own)")
    p.add_argument("--cache-mb", type=float, default=512.0, help="embedding cache budget in MiB (512)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest upload in MiB (20)")
    p.add_argument("--max-pixels", type=int, default=40_000_000, help="largest image, width x height (40 M)")
    p.add_argument("--workers", type=int, default=2, help="decoder worker threads (2)")
    p.add_argument("--queue", type=int, default=4, help="encodes allowed to wait before 503 (4)")
    p.add_argument("--api-key", default=os.environ.get("EDGESAM_API_KEY"),
                   help="require Authorization: Bearer KEY on the API (default: $EDGESAM_API_KEY)")
    p.set_defaults(func=run)


def _backend(args: argparse.Namespace) -> tuple[Any, str]:
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    if args.bundle:
        from edgesam.bench.coldstart import thread_options
        from edgesam.runtimes.loader import load_backend

        return load_backend(args.bundle, args.backend, **thread_options(args.backend, args.threads)), args.bundle
    from edgesam.hub import load_model

    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    name = args.checkpoint or "edgesam-demo"
    return load_model(name, device=args.device), name


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from edgesam.serve import ServeConfig, create_app
    except ImportError as exc:
        raise ImportError(f"edgesam serve needs the serve extra: pip install 'edgesam[serve]' ({exc})") from exc
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port must be in 0..65535, got {args.port}")
    bounds = (("--cache-mb", args.cache_mb, 0, False), ("--max-upload-mb", args.max_upload_mb, 0, True),
              ("--max-pixels", args.max_pixels, 0, True), ("--workers", args.workers, 1, False),
              ("--queue", args.queue, 0, False))
    for flag, value, low, strict in bounds:
        if value < low or (strict and value == low):
            raise ValueError(f"{flag} must be {'>' if strict else '>='} {low}, got {value}")
    name = args.bundle or args.checkpoint or "edgesam-demo"
    config = ServeConfig(cache_mb=args.cache_mb, max_upload_mb=args.max_upload_mb, max_pixels=args.max_pixels,
                         decode_workers=args.workers, queue_size=args.queue, api_key=args.api_key,
                         model_name=os.path.basename(str(name).rstrip("/")) or str(name))  # checks before loading
    model, name = _backend(args)
    app = create_app(model, config)
    warning = exposure_warning(args.host, args.api_key)
    if warning:
        print(f"edgesam serve: warning: {warning}", file=sys.stderr)
    sock = _bind(args.host, args.port)
    port = sock.getsockname()[1]
    shown = {"0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(args.host)
    shown = shown or (f"[{args.host}]" if ":" in args.host else args.host)
    print(f"edgesam serve: {name} on {model_backend_name(app)}; open http://{shown}:{port}/  (API docs: /docs)",
          flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, timeout_keep_alive=30))
    server.run(sockets=[sock])
    return 0


def exposure_warning(host: str, api_key: str | None) -> str | None:
    """The warning for binding ``host`` (None for loopback addresses)."""
    if host in _LOOPBACK:
        return None
    text = f"binding {host} makes the server reachable from the network"
    return text + ("" if api_key else "; anyone who can reach it can use it (add --api-key)")


def model_backend_name(app: Any) -> str:
    return str(app.state.model_info["backend"])


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one), so the URL printed is the real one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit it: no Nagle delay between a response's header and body segments
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise RuntimeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock
