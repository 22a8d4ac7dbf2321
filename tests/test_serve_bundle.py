"""``edgesam serve`` on an exported bundle (ONNX Runtime): same masks as SamPredictor on that backend,
and the SAM web-demo pattern: download the embedding and the decoder, decode locally."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
ort = pytest.importorskip("onnxruntime")
from bundle_fixtures import tiny_model  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from serve_fixtures import png_bytes, scene  # noqa: E402

from edgesam.everything import coco_rle_to_mask  # noqa: E402
from edgesam.predictor import SamPredictor  # noqa: E402
from edgesam.predictor.transforms import apply_coords  # noqa: E402
from edgesam.runtimes.loader import load_backend  # noqa: E402
from edgesam.serve import ServeConfig, create_app  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # a busy machine stalls torch's pool


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from edgesam.export import export_bundle

    return export_bundle(tiny_model(), tmp_path_factory.mktemp("serve") / "tiny", sam_decoder=True)


def test_bundle_masks_equal_predictor_and_local_decode(bundle):
    image, masks = scene(seed=5)
    backend = load_backend(bundle, "onnxruntime", intra_op_threads=1)
    with TestClient(create_app(backend, ServeConfig(model_name="tiny"))) as c:
        image_id = c.post("/v1/images", content=png_bytes(image), headers={"Content-Type": "image/png"}).json()[
            "image_id"]
        ys, xs = np.nonzero(masks[0])
        click = [float(xs.mean()), float(ys.mean())]
        body = {"points": [click], "labels": [1], "multimask": True}
        doc = c.post(f"/v1/images/{image_id}/masks", json=body).json()
        predictor = SamPredictor.from_bundle(bundle, backend="onnxruntime", intra_op_threads=1)
        predictor.set_image(image)
        want, scores, _ = predictor.predict(np.array([click]), np.array([1]))
        got = np.stack([coco_rle_to_mask(m) for m in doc["masks"][0]])
        assert np.array_equal(got, want)
        np.testing.assert_allclose(doc["scores"][0], scores, atol=1e-6)

        info = c.get("/v1/model").json()
        assert info["backend"] == "onnxruntime" and info["bundle"]["decoder_file"] == "decoder_sam.onnx"
        decoder = c.get(info["bundle"]["decoder_url"])
        assert decoder.status_code == 200 and decoder.content == (bundle / "decoder_sam.onnx").read_bytes()
        embedding = np.load(io.BytesIO(c.get(f"/v1/images/{image_id}/embedding").content))
        assert np.array_equal(embedding, predictor.get_image_embedding())

    # decode locally, as SAM's web demo does with the downloaded embedding and decoder
    session = ort.InferenceSession(decoder.content, providers=["CPUExecutionProvider"])
    hw = image.shape[:2]
    coords = np.concatenate([apply_coords(np.array([click]), hw, info["image_size"]), [[0.0, 0.0]]])
    local, iou, _ = session.run(None, {
        "image_embeddings": embedding, "point_coords": coords[None].astype(np.float32),
        "point_labels": np.array([[1, -1]], np.float32),
        "mask_input": np.zeros((1, 1, 4 * embedding.shape[2], 4 * embedding.shape[3]), np.float32),
        "has_mask_input": np.zeros(1, np.float32), "orig_im_size": np.array(hw, np.float32)})
    best = got[int(np.argmax(doc["scores"][0]))]
    local_mask = local[0, 0] > info["mask_threshold"]
    assert (local_mask & best).sum() / max(1, (local_mask | best).sum()) >= 0.99
    assert json.dumps(info)  # plain JSON
