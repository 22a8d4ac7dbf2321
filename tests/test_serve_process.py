"""The real ``python -m edgesam serve`` process on a loopback port, spoken to over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from edgesam.everything import coco_rle_to_mask  # noqa: E402
from edgesam.predictor import SamPredictor  # noqa: E402
from serve_fixtures import REPO, ServerProcess, demo_model, http, largest_object, png_bytes, scene  # noqa: E402


def test_real_server_process_over_http():
    server = ServerProcess()
    try:
        assert server.url.startswith("http://127.0.0.1:")
        status, _, body = http("GET", server.url + "/healthz")
        assert status == 200 and json.loads(body)["model"] == "edgesam-demo"
        image, masks = scene()
        status, _, body = http("POST", server.url + "/v1/images", png_bytes(image), "image/png")
        assert status == 201, body
        image_id = json.loads(body)["image_id"]
        _, (x, y) = largest_object(masks)
        request = {"points": [[x, y]], "labels": [1], "multimask": False}
        status, _, body = http("POST", f"{server.url}/v1/images/{image_id}/masks", json.dumps(request).encode(),
                               "application/json")
        assert status == 200, body
        predictor = SamPredictor(demo_model())
        predictor.set_image(image)
        want = predictor.predict(np.array([[x, y]]), np.array([1]), multimask_output=False)[0][0]
        assert np.array_equal(coco_rle_to_mask(json.loads(body)["masks"][0][0]), want)
        # several clients at once get exactly what one predictor gives serially
        clicks = [(float(x0), float(y0)) for x0, y0 in np.argwhere(masks.any(axis=0))[::997][:8, ::-1]]
        want_all = [predictor.predict(np.array([c]), np.array([1]), multimask_output=False)[0][0] for c in clicks]
        got_all: dict[int, np.ndarray] = {}

        def click(i: int) -> None:
            payload = json.dumps({"points": [list(clicks[i])], "labels": [1], "multimask": False}).encode()
            code, _, raw = http("POST", f"{server.url}/v1/images/{image_id}/masks", payload, "application/json")
            assert code == 200
            got_all[i] = coco_rle_to_mask(json.loads(raw)["masks"][0][0])

        threads = [threading.Thread(target=click, args=(i,)) for i in range(len(clicks))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(got_all) == len(clicks) and all(np.array_equal(got_all[i], w) for i, w in enumerate(want_all))
        status, _, _ = http("POST", f"{server.url}/v1/images/{'f' * 64}/masks", json.dumps(request).encode(),
                            "application/json")
        assert status == 404
        status, headers, body = http("GET", server.url + "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        assert b'route="/v1/images/{image_id}/masks",status="404"' in body
        page_status, _, page = http("GET", server.url + "/")
        assert page_status == 200 and b"/static/app.js" in page
    finally:
        assert server.stop() is not None
    assert server.process.returncode in (0, -15)


def test_serve_cli_errors_are_one_line():
    env_cmd = [sys.executable, "-m", "edgesam", "serve", "--port", "70000"]
    out = subprocess.run(env_cmd, capture_output=True, text=True, cwd=str(REPO), timeout=120,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 2 and "--port must be in 0..65535" in out.stderr


def test_binding_beyond_loopback_warns():
    from edgesam.commands.serve import exposure_warning

    assert exposure_warning("127.0.0.1", None) is None and exposure_warning("::1", None) is None
    assert "reachable from the network" in exposure_warning("0.0.0.0", "k") and "--api-key" not in (
        exposure_warning("0.0.0.0", "k"))
    assert "add --api-key" in exposure_warning("192.168.1.5", None)
