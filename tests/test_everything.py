"""Automatic mask generation: RLE, boxes/NMS, stability, small regions, upscaling, generator."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from edgesam.everything import (
    MaskUpscaler,
    SamAutomaticMaskGenerator,
    area_from_rle,
    batched_mask_to_box,
    build_all_layer_point_grids,
    build_point_grid,
    calculate_stability_score,
    coarse_subset,
    coco_decode_counts,
    coco_encode_counts,
    coco_encode_rle,
    coco_rle_to_mask,
    generate_crop_boxes,
    is_box_near_crop_edge,
    mask_to_rle,
    nms,
    remove_small_regions,
    rle_to_mask,
    roi_to_rle,
    uncrop_boxes_xyxy,
    uncrop_masks,
    uncrop_points,
)
from edgesam.predictor import SamPredictor
from edgesam.predictor.postprocess import upscale_logits

# ----------------------------------------------------------------------------- RLE


def _random_masks(rng: np.random.Generator):
    yield np.zeros((5, 7), bool)
    yield np.ones((5, 7), bool)
    yield np.ones((1, 9), bool)
    yield np.eye(6, dtype=bool)
    for _ in range(40):
        h, w = rng.integers(1, 40, size=2)
        yield rng.random((h, w)) < rng.uniform(0.05, 0.95)


def test_rle_hand_example_and_round_trip() -> None:
    mask = np.array([[0, 1], [1, 1], [0, 0]], bool)  # column-major: 0 1 0 | 1 1 0
    rle = mask_to_rle(mask)
    assert rle == {"size": [3, 2], "counts": [1, 1, 1, 2, 1]}
    assert mask_to_rle(np.array([[1, 0]], bool))["counts"] == [0, 1, 1]  # starts with a 0-run
    assert coco_encode_rle(rle) == {"size": [3, 2], "counts": "11110"}
    rng = np.random.default_rng(0)
    for m in _random_masks(rng):
        rle = mask_to_rle(m)
        assert sum(rle["counts"]) == m.size and all(c > 0 for c in rle["counts"][1:])
        assert area_from_rle(rle) == int(m.sum())
        np.testing.assert_array_equal(rle_to_mask(rle), m)
        np.testing.assert_array_equal(coco_rle_to_mask(coco_encode_rle(rle)), m)


def test_roi_rle_equals_full_mask_rle() -> None:
    rng = np.random.default_rng(1)
    for _ in range(200):
        h, w = (int(v) for v in rng.integers(1, 30, size=2))
        rh, rw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
        y0, x0 = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
        roi = rng.random((rh, rw)) < 0.5
        roi[:, rng.random(rw) < 0.3] = True  # full columns: runs that continue into the next column
        full = np.zeros((h, w), bool)
        full[y0 : y0 + rh, x0 : x0 + rw] = roi
        assert roi_to_rle(roi, (x0, y0), (h, w)) == mask_to_rle(full)
    with pytest.raises(ValueError):
        roi_to_rle(np.ones((3, 3), bool), (2, 0), (3, 4))


def test_coco_counts_string_round_trip() -> None:
    counts = [5, 40, 3, 1000, 2, 5050]  # later counts smaller than earlier ones: negative deltas
    text = coco_encode_counts(counts)
    assert text == "5X13Pn0Obn3"
    assert coco_decode_counts(text) == counts
    assert coco_decode_counts(text.encode()) == counts


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools vs numpy 2 copy keyword
def test_coco_rle_matches_pycocotools() -> None:
    mask_utils = pytest.importorskip("pycocotools.mask")
    rng = np.random.default_rng(2)
    for m in _random_masks(rng):
        ours = coco_encode_rle(mask_to_rle(m))
        theirs = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        assert ours["counts"].encode() == theirs["counts"]
        assert ours["size"] == list(theirs["size"])
        np.testing.assert_array_equal(mask_utils.decode(theirs).astype(bool), coco_rle_to_mask(ours))


# ----------------------------------------------------------------------------- boxes


def _nms_reference(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: -scores[i])  # stable: ties keep input order
    kept: list[int] = []
    for i in order:
        ok = True
        for j in kept:
            ix = max(0.0, min(boxes[i][2], boxes[j][2]) - max(boxes[i][0], boxes[j][0]))
            iy = max(0.0, min(boxes[i][3], boxes[j][3]) - max(boxes[i][1], boxes[j][1]))
            inter = ix * iy
            ai = (boxes[i][2] - boxes[i][0]) * (boxes[i][3] - boxes[i][1])
            aj = (boxes[j][2] - boxes[j][0]) * (boxes[j][3] - boxes[j][1])
            union = ai + aj - inter
            # IoU rounded to float32 (as torchvision computes it), compared in double precision.
            if union > 0 and float(np.float32(inter) / np.float32(union)) > thr:
                ok = False
                break
        if ok:
            kept.append(i)
    return kept


def test_nms_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    for trial in range(150):
        n = int(rng.integers(0, 60))
        xy = rng.integers(0, 50, size=(n, 2))
        boxes = np.concatenate([xy, xy + rng.integers(0, 30, size=(n, 2))], axis=1).astype(float)
        scores = rng.random(n)
        if trial % 2:
            scores = np.round(scores * 3) / 3  # many ties
        thr = float(rng.choice([0.3, 0.5, 0.7, 0.9]))
        got = nms(boxes, scores.astype(np.float32), thr).tolist()
        assert got == _nms_reference(boxes.tolist(), scores.astype(np.float32).tolist(), thr)
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5).shape == (0,)


def test_batched_mask_to_box_and_uncrop() -> None:
    masks = np.zeros((3, 6, 8), bool)
    masks[0, 2:4, 1:6] = True
    masks[1, 5, 7] = True
    boxes = batched_mask_to_box(masks)
    np.testing.assert_array_equal(boxes, [[1, 2, 5, 3], [7, 5, 7, 5], [0, 0, 0, 0]])
    assert batched_mask_to_box(masks[None]).shape == (1, 3, 4)
    np.testing.assert_array_equal(uncrop_boxes_xyxy(boxes[:1], [10, 20, 50, 60]), [[11, 22, 15, 23]])
    np.testing.assert_array_equal(uncrop_points(np.array([[1.5, 2.0]]), [10, 20, 50, 60]), [[11.5, 22.0]])
    padded = uncrop_masks(masks[:1], [2, 1, 10, 7], orig_h=9, orig_w=12)
    assert padded.shape == (1, 9, 12) and padded[0, 3:5, 3:8].all() and padded.sum() == masks[0].sum()
    # Near the crop's inner edges (left/top at 100) but not near the image edges.
    crop, image = [100, 100, 300, 300], [0, 0, 300, 300]
    near = is_box_near_crop_edge(np.array([[5, 50, 60, 90], [50, 50, 60, 60], [50, 50, 199, 199]]), crop, image)
    np.testing.assert_array_equal(near, [True, False, False])


def test_point_grids_and_crop_boxes() -> None:
    np.testing.assert_allclose(build_point_grid(2), [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]])
    grids = build_all_layer_point_grids(8, 2, 2)
    assert [len(g) for g in grids] == [64, 16, 4]
    boxes, layers = generate_crop_boxes((600, 800), 0, 512 / 1500)
    assert boxes == [[0, 0, 800, 600]] and layers == [0]
    boxes, layers = generate_crop_boxes((600, 800), 1, 512 / 1500)
    # overlap = int(512/1500 * 600) = 204; crop = ceil((204 + side) / 2) -> 502 x 402
    assert boxes[1:] == [[0, 0, 502, 402], [0, 198, 502, 600], [298, 0, 800, 402], [298, 198, 800, 600]]
    boxes, layers = generate_crop_boxes((375, 500), 2, 0.3)
    assert layers == [0] + [1] * 4 + [2] * 16
    for layer in (1, 2):
        cover = np.zeros((375, 500), int)
        for (x0, y0, x1, y1), lay in zip(boxes, layers):
            if lay == layer:
                cover[y0:y1, x0:x1] += 1
        assert cover.min() >= 1 and cover.max() == 4  # tiles cover the image, overlaps meet at 4


def test_coarse_subset() -> None:
    sub = coarse_subset(16).reshape(4, 4)
    np.testing.assert_array_equal(sub, [[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]])
    assert coarse_subset(10).sum() == 3


# ----------------------------------------------------------------------------- masks


def test_stability_score_hand_example() -> None:
    logits = np.array([[-2.0, -0.5, 0.5], [1.5, 2.0, 3.0], [0.9, 1.0, -1.0]], np.float32)
    # > +1: {1.5, 2, 3} = 3 pixels; > -1: all but -2 and -1 = 7 pixels
    assert calculate_stability_score(logits, 0.0, 1.0) == pytest.approx(3 / 7)
    batch = np.stack([logits, np.full((3, 3), -5, np.float32), np.full((3, 3), 5, np.float32)])[None]
    score = calculate_stability_score(batch, 0.0, 1.0)
    assert score.shape == (1, 3) and score.dtype == np.float32
    assert score[0, 0] == pytest.approx(3 / 7) and math.isnan(score[0, 1]) and score[0, 2] == 1.0


def test_remove_small_regions() -> None:
    mask = np.zeros((40, 40), bool)
    mask[5:30, 5:30] = True
    mask[15:17, 15:17] = False  # hole of 4 pixels
    mask[34:37, 34:37] = True  # island of 9 pixels
    filled, changed = remove_small_regions(mask, 10, "holes")
    assert changed and filled[15:17, 15:17].all() and filled.sum() == mask.sum() + 4
    cleaned, changed = remove_small_regions(filled, 10, "islands")
    assert changed and not cleaned[34:37, 34:37].any() and cleaned.sum() == 625
    same, changed = remove_small_regions(mask, 4, "holes")
    assert not changed and same is mask
    # Every island small: the largest survives.
    tiny = np.zeros((10, 10), bool)
    tiny[1, 1] = True
    tiny[5:7, 5:7] = True
    kept, changed = remove_small_regions(tiny, 50, "islands")
    assert changed and kept.sum() == 4 and kept[5:7, 5:7].all()
    with pytest.raises(ValueError):
        remove_small_regions(mask, 10, "both")  # type: ignore[arg-type]


def test_roi_upscale_is_exact() -> None:
    rng = np.random.default_rng(4)
    for original in [(192, 256), (300, 97), (41, 500), (256, 256)]:
        size = 256
        scale = size / max(original)
        input_size = (int(original[0] * scale + 0.5), int(original[1] * scale + 0.5))
        up = MaskUpscaler(low_res_size=(64, 64), image_size=size, input_size=input_size, original_size=original)
        for _ in range(10):
            low = np.full((64, 64), -6.0, np.float32)
            y, x = rng.integers(0, 60, size=2)
            low[y : y + rng.integers(1, 12), x : x + rng.integers(1, 12)] = rng.uniform(0.5, 4)
            low += rng.normal(0, 0.5, low.shape).astype(np.float32)
            full = up.upscale(low)
            np.testing.assert_allclose(
                full,
                upscale_logits(low[None], image_size=size, input_size=input_size, original_size=original)[0],
                atol=1e-5,
            )
            roi = up.upscale_roi(low, -1.0)
            h, w = roi.logits.shape
            np.testing.assert_array_equal(roi.logits, full[roi.y0 : roi.y0 + h, roi.x0 : roi.x0 + w])
            outside = full.copy()
            outside[roi.y0 : roi.y0 + h, roi.x0 : roi.x0 + w] = -np.inf
            assert (outside <= -1.0).all()
            if (full > -1.0).any():
                assert h * w < full.size  # the region is a real saving on these local blobs


# ----------------------------------------------------------------------------- generator

MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)


class DiscBackend:
    """Test double of the ``Backend`` protocol that segments flat-coloured discs perfectly.

    An object is a set of pixels with green 255 and red ``40 * k`` (``k >= 1``). ``encode``
    packs the ``S x S`` map of object ids into the ``[1, 256, S/16, S/16]`` embedding (same
    number of values); ``decode`` answers a click on object ``k`` with logits ``4 *
    signed distance`` to its boundary for tokens 0..3 (IoU 0.9, 0.95, 0.93, 0.5), and a click
    on the background with negative logits and IoU 0.1.
    """

    name = "discs"
    image_size = 256
    pixel_mean = MEAN
    pixel_std = STD
    mask_threshold = 0.0

    def __init__(self) -> None:
        self.prompts_decoded = 0

    def encode(self, image: np.ndarray) -> np.ndarray:
        s = self.image_size
        assert image.shape == (1, 3, s, s) and image.dtype == np.float32
        rgb = image[0].transpose(1, 2, 0) * STD + MEAN
        ids = np.where(rgb[..., 1] > 250, np.rint(rgb[..., 0] / 40), 0).astype(np.float32)
        g = s // 16
        return ids.reshape(16, g, 16, g).transpose(1, 3, 0, 2).reshape(1, g * g, 16, 16)

    def decode(self, emb, coords, labels, mask_input, has_mask_input):
        s, g = self.image_size, self.image_size // 16
        ids = emb.reshape(g, g, 16, 16).transpose(2, 0, 3, 1).reshape(s, s)
        b = coords.shape[0]
        self.prompts_decoded += b
        iou = np.full((b, 4), 0.1, np.float32)
        low = np.full((b, 4, s // 4, s // 4), -20.0, np.float32)
        cache: dict[int, np.ndarray] = {}
        for i in range(b):
            x, y = coords[i, 0]
            k = int(ids[min(int(y), s - 1), min(int(x), s - 1)])
            if k == 0:
                continue
            if k not in cache:
                inside = (ids == k).astype(np.uint8)
                d_in = cv2.distanceTransform(inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
                d_out = cv2.distanceTransform(1 - inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
                sd = np.where(inside > 0, d_in - 0.5, 0.5 - d_out).astype(np.float32)
                cache[k] = 4.0 * cv2.resize(sd, (s // 4, s // 4), interpolation=cv2.INTER_AREA)
            low[i] = cache[k]
            iou[i] = (0.9, 0.95, 0.93, 0.5)
        return iou, low


DISCS = [(60, 60, 30, 1), (170, 110, 40, 2), (230, 170, 25, 3)]  # (cx, cy, r, id); #3 is cut by the border


def _disc_image(discs=DISCS, holes=(), size=(192, 256)) -> np.ndarray:
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 2] = 90
    for cx, cy, r, k in discs:
        inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        img[inside] = (40 * k, 255, 0)
    for cx, cy, r in holes:
        img[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = (0, 0, 90)
    return img


def _disc_mask(cx, cy, r, size=(192, 256)) -> np.ndarray:
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def _match(records, discs=DISCS):
    """Each disc's record (by mask IoU), asserting a one-to-one match."""
    assert len(records) == len(discs)
    out = []
    for cx, cy, r, _ in discs:
        truth = _disc_mask(cx, cy, r)
        best = max(records, key=lambda rec: _iou(rec["segmentation"], truth))
        assert _iou(best["segmentation"], truth) > 0.93
        out.append(best)
    assert len({id(r) for r in out}) == len(discs)
    return out


def test_generator_finds_each_disc_once() -> None:
    backend = DiscBackend()
    gen = SamAutomaticMaskGenerator(backend, points_per_side=16, points_per_batch=50)
    image = _disc_image()
    records = gen.generate(image)
    assert backend.prompts_decoded == 256
    # Many grid points hit every disc; NMS leaves one mask per disc.
    grid = build_point_grid(16) * [256, 192]
    for cx, cy, r, _ in DISCS:
        assert (((grid - [cx, cy]) ** 2).sum(1) <= r * r).sum() >= 4
    for (cx, cy, r, _), rec in zip(DISCS, _match(records)):
        seg = rec["segmentation"]
        assert seg.shape == (192, 256) and seg.dtype == bool
        assert rec["area"] == int(seg.sum())
        ys, xs = np.nonzero(seg)
        assert rec["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]
        expected = [max(cx - r, 0), max(cy - r, 0), min(cx + r, 255), min(cy + r, 191)]
        got = [rec["bbox"][0], rec["bbox"][1], rec["bbox"][0] + rec["bbox"][2], rec["bbox"][1] + rec["bbox"][3]]
        assert np.abs(np.subtract(got, expected)).max() <= 1
        assert rec["area"] == pytest.approx(_disc_mask(cx, cy, r).sum(), rel=0.04)
        assert rec["predicted_iou"] == pytest.approx(0.95)  # token 1 beats its duplicate (0.93)
        assert 0.95 <= rec["stability_score"] <= 1.0
        ((px, py),) = rec["point_coords"]
        assert (px - cx) ** 2 + (py - cy) ** 2 <= r * r
        assert rec["crop_box"] == [0, 0, 256, 192]


def test_generator_equals_full_resolution_pipeline() -> None:
    """Same masks/scores as SAM's steps run on full-resolution logits from ``predict_batch``."""
    predictor = SamPredictor(DiscBackend())
    image = _disc_image()
    gen = SamAutomaticMaskGenerator(predictor, points_per_side=12, box_nms_thresh=1.0)
    got = gen.generate_mask_set(image)

    predictor.set_image(image)
    points = build_point_grid(12) * [256, 192]
    masks, scores, _ = predictor.predict_batch(points[:, None], np.ones((len(points), 1)), return_logits=True)
    logits, iou = masks.reshape(-1, 192, 256), scores.reshape(-1)
    keep = np.flatnonzero(iou > 0.88)
    stab = calculate_stability_score(logits[keep], 0.0, 1.0)
    keep, stab = keep[stab >= 0.95], stab[stab >= 0.95]
    binary = logits[keep] > 0
    boxes = batched_mask_to_box(binary)
    order = nms(boxes, iou[keep], 1.0)
    assert len(got) == len(order) > 3
    np.testing.assert_array_equal(got.boxes, boxes[order])
    np.testing.assert_array_equal(got.iou_preds, iou[keep][order])
    np.testing.assert_array_equal(got.stability, stab[order])
    np.testing.assert_array_equal(got.points, np.repeat(points, 3, axis=0)[keep][order])
    for rle, m in zip(got.rles, binary[order]):
        np.testing.assert_array_equal(rle_to_mask(rle), m)


def test_generator_min_region_area_removes_islands_and_holes() -> None:
    discs = [(80, 90, 40, 2), (200, 40, 4, 2)]  # object 2 = a disc + a small island
    image = _disc_image(discs, holes=[(95, 90, 5)])
    main = _disc_mask(80, 90, 40)

    raw = SamAutomaticMaskGenerator(DiscBackend(), points_per_side=16).generate(image)
    assert len(raw) == 1
    seg = raw[0]["segmentation"]
    assert seg[40, 200] and not seg[90, 95]  # the island is in, the hole is out
    assert raw[0]["bbox"][2] > 150

    clean = SamAutomaticMaskGenerator(DiscBackend(), points_per_side=16, min_mask_region_area=100).generate(image)
    assert len(clean) == 1
    seg = clean[0]["segmentation"]
    assert not seg[30:50, 190:210].any() and seg[90, 95]
    assert clean[0]["area"] == int(seg.sum()) and _iou(seg, main) > 0.95
    assert abs(clean[0]["bbox"][0] - 40) <= 1 and abs(clean[0]["bbox"][2] - 80) <= 2


@pytest.mark.parametrize("mode", ["uncompressed_rle", "coco_rle"])
def test_generator_output_modes(mode: str) -> None:
    image = _disc_image()
    binary = SamAutomaticMaskGenerator(DiscBackend(), points_per_side=8).generate(image)
    encoded = SamAutomaticMaskGenerator(DiscBackend(), points_per_side=8, output_mode=mode).generate(image)
    assert len(binary) == len(encoded) == 3
    for b, e in zip(binary, encoded):
        seg = e["segmentation"]
        assert seg["size"] == [192, 256]
        decoded = coco_rle_to_mask(seg) if mode == "coco_rle" else rle_to_mask(seg)
        np.testing.assert_array_equal(decoded, b["segmentation"])
        assert {k: v for k, v in e.items() if k != "segmentation"} == {
            k: v for k, v in b.items() if k != "segmentation"
        }


def test_generator_crop_layers_deduplicate_across_crops() -> None:
    gen = SamAutomaticMaskGenerator(DiscBackend(), points_per_side=16, crop_n_layers=1)
    records = _match(gen.generate(_disc_image()))
    crops = [r["crop_box"] for r in records]
    assert any(c != [0, 0, 256, 192] for c in crops)  # smaller crops win the cross-crop NMS
    for (cx, cy, r, _), rec in zip(DISCS, records):
        x, y, w, h = rec["bbox"]
        assert abs(x - max(cx - r, 0)) <= 2 and abs(x + w - min(cx + r, 255)) <= 2


def test_generator_coarse_to_fine_skips_covered_points() -> None:
    full_backend, coarse_backend = DiscBackend(), DiscBackend()
    image = _disc_image()
    full = SamAutomaticMaskGenerator(full_backend, points_per_side=16).generate(image)
    coarse = SamAutomaticMaskGenerator(coarse_backend, points_per_side=16, coarse_to_fine=True).generate(image)
    assert [r["bbox"] for r in _match(coarse)] == [r["bbox"] for r in _match(full)]
    grid = build_point_grid(16) * [256, 192]
    fine = grid[~coarse_subset(256)]
    covered = sum(bool(r["segmentation"][int(y), int(x)]) for x, y in fine for r in full)
    assert covered > 10 and coarse_backend.prompts_decoded == 256 - covered


def test_generator_argument_errors() -> None:
    backend = DiscBackend()
    with pytest.raises(ValueError, match="exactly one"):
        SamAutomaticMaskGenerator(backend, points_per_side=None)
    with pytest.raises(ValueError, match="exactly one"):
        SamAutomaticMaskGenerator(backend, point_grids=[build_point_grid(4)])
    with pytest.raises(ValueError, match="output_mode"):
        SamAutomaticMaskGenerator(backend, output_mode="png")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="point_grids"):
        SamAutomaticMaskGenerator(backend, points_per_side=None, point_grids=[build_point_grid(4)], crop_n_layers=1)
    gen = SamAutomaticMaskGenerator(backend, points_per_side=None, point_grids=[build_point_grid(4)])
    with pytest.raises(ValueError, match="image"):
        gen.generate(np.zeros((10, 10), np.uint8))


def test_generator_smoke_vit_t_random_weights(scene_image: np.ndarray) -> None:
    torch = pytest.importorskip("torch")
    from edgesam.models.registry import build_sam
    from edgesam.runtimes.torch_backend import TorchBackend

    torch.manual_seed(0)
    predictor = SamPredictor(TorchBackend(build_sam("vit_t", image_size=256)))
    gen = SamAutomaticMaskGenerator(
        predictor,
        points_per_side=8,
        pred_iou_thresh=0.0,  # random weights: keep everything so there is something to check
        stability_score_thresh=0.0,
        box_nms_thresh=1.0,
        output_mode="uncompressed_rle",
    )
    records = gen.generate(scene_image)
    assert len(records) == 8 * 8 * 3
    h, w = scene_image.shape[:2]
    for rec in records:
        assert set(rec) == {
            "segmentation",
            "area",
            "bbox",
            "predicted_iou",
            "point_coords",
            "stability_score",
            "crop_box",
        }
        mask = rle_to_mask(rec["segmentation"])
        assert mask.shape == (h, w) and rec["area"] == int(mask.sum())
        if rec["area"]:
            ys, xs = np.nonzero(mask)
            assert rec["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]
        assert all(isinstance(v, int) for v in rec["bbox"] + rec["crop_box"]) and rec["crop_box"] == [0, 0, w, h]
        assert isinstance(rec["predicted_iou"], float) and isinstance(rec["stability_score"], float)
        ((x, y),) = rec["point_coords"]
        assert 0 <= x < w and 0 <= y < h

    # Same masks as thresholding the predictor's full-resolution logits.
    predictor.set_image(scene_image)
    points = build_point_grid(8) * [w, h]
    logits, scores, _ = predictor.predict_batch(points[:, None], np.ones((len(points), 1)), return_logits=True)
    by_point = {tuple(p): (lg, sc) for p, lg, sc in zip(points.tolist(), logits, scores)}
    for rec in records:
        lg, sc = by_point[tuple(rec["point_coords"][0])]
        k = int(np.flatnonzero(sc == np.float32(rec["predicted_iou"]))[0])
        np.testing.assert_array_equal(rle_to_mask(rec["segmentation"]), lg[k] > 0)
        assert rec["stability_score"] == pytest.approx(float(calculate_stability_score(lg[k], 0.0, 1.0)), nan_ok=True)
