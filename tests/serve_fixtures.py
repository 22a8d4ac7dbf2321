"""Shared pieces of the ``edgesam serve`` tests: the embedded demo model and a sample scene."""

from __future__ import annotations

import functools

import cv2
import numpy as np


@functools.lru_cache(maxsize=1)
def demo_model():
    """The embedded ``edgesam-demo`` torch model (loaded once per test process)."""
    from edgesam.hub import load_model

    return load_model("edgesam-demo")


@functools.lru_cache(maxsize=4)
def scene(seed: int = 3, height: int = 192, width: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """``(image uint8 [H, W, 3], masks bool [K, H, W])``: a synthetic scene like the demo model's training data."""
    from edgesam.bench.workload import scene_config
    from edgesam.scenes import generate_scene

    s = generate_scene(seed, scene_config(height, width))
    return s.image, s.masks


def largest_object(masks: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """The largest object's mask and its interior point farthest from its border, ``(x, y)``."""
    from edgesam.bench.workload import visible_point

    mask = masks[int(np.argmax(masks.sum(axis=(1, 2))))]
    x, y = visible_point(mask)
    return mask, (float(x), float(y))


def png_bytes(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


class ServerProcess:
    """``python -m edgesam serve ARGS`` on 127.0.0.1 and a free port, started and stopped by the test."""

    def __init__(self, *args: str, timeout: float = 180.0) -> None:
        import os
        import re
        import subprocess
        import sys
        import threading

        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
                   OMP_NUM_THREADS="1")
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-m", "edgesam", "serve", "--host", "127.0.0.1", "--port", "0", "--threads", "1",
             *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=str(REPO))
        self.lines: list[str] = []
        found = threading.Event()
        self.url = ""

        def read() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                self.lines.append(line)
                match = re.search(r"open (http://127\.0\.0\.1:\d+)/", line)
                if match and not found.is_set():
                    self.url = match.group(1)
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(timeout) or self.process.poll() is not None:
            self.stop()
            raise RuntimeError("server did not start:\n" + "".join(self.lines))

    def stop(self) -> int:
        import subprocess

        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        return self.process.returncode


def http(method: str, url: str, body: bytes | None = None, content_type: str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One HTTP request with the standard library: ``(status, headers, body)``."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    if content_type:
        request.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()
