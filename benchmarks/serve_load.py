"""Loopback load test of ``edgesam serve``: N clients x M clicks against a real server process.

    python benchmarks/serve_load.py [--clients 8] [--clicks 50] [--out benchmarks/results/serve_load.jsonl]
                                    [-- SERVE ARGS, e.g. --bundle B --backend openvino]

Starts ``python -m edgesam serve`` on 127.0.0.1 (a free port; nothing else is ever contacted),
uploads one synthetic scene, then measures, side by side in one run:

1. in-process decode: ``SamPredictor.predict`` for one click, in this process, same model,
   interleaved with 2. one client's sequential clicks over HTTP (click-to-mask over HTTP, no
   contention; the server's own decode time is recorded too);
3. ``--clients`` threads, each ``--clicks`` clicks on its own keep-alive connection;

and records p50/p99 latency, errors (non-200 answers or exceptions: must be 0), throughput, and
the server's RSS before and after. It stops by itself (fixed request count, per-request timeout)
and always stops the server. One JSON line per run is appended to ``--out``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(extra: list[str], threads: int) -> tuple[subprocess.Popen, int]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-u", "-m", "edgesam", "serve", "--host", "127.0.0.1", "--port", "0",
                             "--threads", str(threads), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 300
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        match = re.search(r"open http://127\.0\.0\.1:(\d+)/", line)
        if match:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # drain
            return proc, int(match.group(1))
    proc.kill()
    raise SystemExit("the server did not start")


def request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None,
            content_type: str = "application/json") -> tuple[int, bytes]:
    conn.request(method, path, body=body, headers={"Content-Type": content_type} if body is not None else {})
    response = conn.getresponse()
    return response.status, response.read()


def percentiles(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64) * 1e3
    return {"p50_ms": round(float(np.percentile(a, 50)), 2), "p99_ms": round(float(np.percentile(a, 99)), 2),
            "mean_ms": round(float(a.mean()), 2), "n": int(a.size)}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    serve_args = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--clicks", type=int, default=50, help="clicks per client")
    p.add_argument("--threads", type=int, default=1, help="runtime intra-op threads (server and in-process)")
    p.add_argument("--size", default="480x640", help="image HxW (480x640)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "serve_load.jsonl"))
    args = p.parse_args(argv)
    if not (1 <= args.clients <= 64 and 1 <= args.clicks <= 1000):
        raise SystemExit("--clients must be 1..64 and --clicks 1..1000 (a bounded test)")
    height, width = (int(v) for v in args.size.split("x"))

    import cv2

    from edgesam.bench.workload import scene_config
    from edgesam.scenes import generate_scene

    image = generate_scene(7, scene_config(height, width)).image
    png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()
    rng = np.random.default_rng(0)
    clicks = rng.uniform([0, 0], [width - 1, height - 1], size=(args.clients * args.clicks + 64, 2))

    load_before = os.getloadavg()
    proc, port = start_server(serve_args, args.threads)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        status, body = request(conn, "POST", "/v1/images", png, "image/png")
        assert status in (200, 201), body
        image_id = json.loads(body)["image_id"]
        path = f"/v1/images/{image_id}/masks"

        def click(c: http.client.HTTPConnection, xy: np.ndarray) -> tuple[int, float, float]:
            payload = json.dumps({"points": [xy.tolist()], "labels": [1], "multimask": False}).encode()
            start = time.perf_counter()
            status, raw = request(c, "POST", path, payload)
            seconds = time.perf_counter() - start
            return status, seconds, (json.loads(raw)["decode_ms"] / 1e3 if status == 200 else float("nan"))

        for xy in clicks[:10]:  # warm-up
            click(conn, xy)
        rss_before = rss_mb(proc.pid)

        # in-process decode, same model, this process
        from edgesam.predictor import SamPredictor

        if "--bundle" in serve_args:
            backend = serve_args[serve_args.index("--backend") + 1] if "--backend" in serve_args else "onnxruntime"
            from edgesam.loading import thread_options

            predictor = SamPredictor.from_bundle(serve_args[serve_args.index("--bundle") + 1], backend=backend,
                                                 **thread_options(backend, args.threads))
        else:
            import torch

            from edgesam.hub import load_model

            torch.set_num_threads(args.threads)
            name = serve_args[serve_args.index("--checkpoint") + 1] if "--checkpoint" in serve_args else "edgesam-demo"
            predictor = SamPredictor(load_model(name))
        predictor.set_image(image)
        # interleaved (one in-process decode, then the same click over HTTP) so load drift hits both alike
        in_process, sequential, server_decode = [], [], []
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        click(conn, clicks[0])  # connect
        for xy in clicks[:64]:
            start = time.perf_counter()
            predictor.predict(xy[None], np.array([1]), multimask_output=False)
            in_process.append(time.perf_counter() - start)
            status, seconds, decode = click(conn, xy)
            assert status == 200
            sequential.append(seconds)
            server_decode.append(decode)

        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def client(k: int) -> None:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for xy in clicks[k * args.clicks:(k + 1) * args.clicks]:
                try:
                    status, seconds, _ = click(c, xy)
                except Exception as exc:  # noqa: BLE001 - every failure is counted
                    with lock:
                        errors.append(type(exc).__name__)
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                    continue
                with lock:
                    latencies.append(seconds)
                    if status != 200:
                        errors.append(str(status))
            c.close()

        start = time.perf_counter()
        workers = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        wall = time.perf_counter() - start
        rss_after = rss_mb(proc.pid)
        status, _ = request(conn, "GET", "/healthz")
        assert status == 200
    finally:
        proc.terminate()
        proc.wait(30)

    row = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "server_args": serve_args, "threads": args.threads, "image": [height, width],
        "loadavg_before": [round(v, 2) for v in load_before], "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "in_process_decode": percentiles(in_process),
        "http_sequential": percentiles(sequential),
        "http_sequential_server_decode": percentiles(server_decode),
        "http_concurrent": {**percentiles(latencies), "clients": args.clients, "clicks_per_client": args.clicks,
                            "errors": len(errors), "error_kinds": sorted(set(errors)),
                            "requests_per_s": round(len(latencies) / wall, 1)},
        "server_rss_mb": {"before": round(rss_before, 1), "after": round(rss_after, 1)},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row, indent=1))
    return 0 if not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
