"""Tracking a prompt across frames: re-prompting with the previous mask, box, click and motion."""

from __future__ import annotations

import numpy as np
import pytest
from stream_doubles import ColourBackend, disc_frame, disc_video, iou

from edgesam.predictor import SamPredictor
from edgesam.stream import Tracker, interior_point, mask_box, translate_logits


def test_mask_box_and_interior_point_of_a_ring() -> None:
    yy, xx = np.mgrid[0:60, 0:80]
    r2 = (xx - 40) ** 2 + (yy - 30) ** 2
    ring = (r2 <= 20**2) & (r2 >= 12**2)
    assert mask_box(ring).tolist() == [20, 10, 60, 50]
    x, y = interior_point(ring).astype(int)
    assert ring[y, x]  # on the ring, unlike the centroid (40, 30)
    assert mask_box(np.zeros((4, 4), bool)) is None and interior_point(np.zeros((4, 4), bool)) is None


def test_tracker_follows_a_moving_disc() -> None:
    frames, discs = disc_video(25)
    predictor = SamPredictor(ColourBackend())
    tracker = Tracker(point=(28, 40))
    ious = []
    for frame, disc in zip(frames, discs):
        predictor.set_image(frame)
        result = tracker.update(predictor)
        assert result.mask.shape == disc.shape and result.mask.dtype == bool and not result.lost
        ious.append(iou(result.mask, disc))
    assert min(ious) > 0.5, np.round(ious, 2)
    # control: the first frame's prompt, never updated, loses the disc as it moves away
    static = []
    for frame, disc in zip(frames, discs):
        predictor.set_image(frame)
        masks, _, _ = predictor.predict(point_coords=np.array([[28.0, 40.0]]), point_labels=np.array([1]),
                                        box=np.array([14, 26, 42, 54]), multimask_output=False)  # fmt: skip
        static.append(iou(masks[0], disc))
    assert static[-1] < 0.5


def test_tracker_reprompts_with_previous_mask_box_and_point() -> None:
    frames, _ = disc_video(3)
    predictor = SamPredictor(ColourBackend())
    seen: list[list[dict]] = []  # the prompts decoded on each frame

    class Recording:
        original_size = frames[0].shape[:2]

        def predict(self, **kwargs):
            seen[-1].append(kwargs)
            return predictor.predict(**kwargs)

    tracker = Tracker(box=(14, 26, 42, 54), box_margin=0.2, use_mask_input=True)
    for frame in frames:
        predictor.set_image(frame)
        seen.append([])
        result = tracker.update(Recording())
    assert len(seen[0]) == 1 and seen[0][0]["box"].tolist() == [14, 26, 42, 54] and seen[0][0].get("mask_input") is None
    later, box_alone, click_alone = seen[2]  # the box + click prompt, then the candidates without one of them
    assert later["mask_input"].shape == (1, 32, 32) and later["multimask_output"] is False
    assert later["point_coords"].shape == (1, 2) and later["point_labels"].tolist() == [1.0]
    assert box_alone.get("point_coords") is None and box_alone["box"].tolist() == later["box"].tolist()
    assert click_alone.get("box") is None and click_alone["multimask_output"] is True
    assert click_alone["point_coords"].tolist() == later["point_coords"].tolist()
    prev = tracker.last
    assert prev is result and prev.low_res_logits.shape == (1, 32, 32)
    with pytest.raises(ValueError, match="point and/or a box"):
        Tracker()
    with pytest.raises(ValueError, match="x1 >= x0"):
        Tracker(box=(10, 10, 5, 20))


def test_tracker_marks_lost_and_reacquires_with_the_last_box() -> None:
    predictor = SamPredictor(ColourBackend())
    tracker = Tracker(point=(28, 40))
    frame, disc = disc_frame(0)
    predictor.set_image(frame)
    found = tracker.update(predictor)
    assert not found.lost
    prompts: list[dict] = []

    class Vanished:  # a frame where the model finds nothing (the object left the view)
        original_size = frame.shape[:2]

        def predict(self, **kwargs):
            prompts.append(kwargs)
            return np.zeros((1, *frame.shape[:2]), bool), np.array([0.2], np.float32), np.full((1, 32, 32), -5.0, np.float32)

    lost = tracker.update(Vanished())
    assert lost.lost and lost.box is None and lost.point is None and not lost.mask.any()
    tracker.update(Vanished())
    again = prompts[-1]
    assert "mask_input" not in again and "point_coords" not in again  # stale logits are not reused
    assert np.all(again["box"][:2] <= found.box[:2]) and np.all(again["box"][2:] >= found.box[2:])
    back = tracker.update(predictor)
    assert not back.lost and iou(back.mask, disc) > 0.5


def test_tracker_extrapolates_over_dropped_frames() -> None:
    """Bursts of 3 frames with 5 dropped in between reach the tracker, as in a lagging stream."""
    frames, discs = disc_video(40, step=(1.5, 0.5))
    seen = [i for i in range(40) if i % 8 < 3]
    predictor = SamPredictor(ColourBackend())

    class Delivered:  # what the stream hands over: the frame's predictor and (maybe) its index
        def __init__(self, index: int, known: bool) -> None:
            self.index = index if known else None
            self.original_size = frames[index].shape[:2]

        def predict(self, **kwargs):
            return predictor.predict(**kwargs)

    worst = {}
    for known in (True, False):
        # one prompt per frame: the click-alone candidate finds this flat-coloured disc anywhere
        tracker = Tracker(point=(28, 40), candidates=False)
        ious = []
        for i in seen:
            predictor.set_image(frames[i])
            ious.append(iou(tracker.update(Delivered(i, known)).mask, discs[i]))
        worst[known] = min(ious)
    # with indices the motion is scaled by the frames elapsed; without, the gaps lose the disc
    assert worst[True] > 0.5 and worst[False] < 0.5, worst


def test_translate_logits() -> None:
    logits = np.full((1, 8, 8), -9.0, np.float32)
    logits[0, 2, 3] = 5.0
    moved = translate_logits(logits, np.array([2.2, -1.0]))
    assert moved[0, 1, 5] == 5.0 and np.count_nonzero(moved > 0) == 1 and moved.min() == -9.0
    assert translate_logits(logits, np.zeros(2)) is logits
    assert (translate_logits(logits, np.array([20.0, 0.0])) == -9.0).all()
