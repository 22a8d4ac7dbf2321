"""The tracker's choice among candidate masks and its remembered box size, on the embedded model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stream_doubles import disc_frame, iou

import edgesam
from edgesam.distillation.prompts import mask_center_point
from edgesam.distillation.synthetic_video import VideoConfig, generate_video
from edgesam.stream import Tracker


@pytest.fixture(scope="module")
def predictor() -> edgesam.SamPredictor:
    torch.set_num_threads(1)
    return edgesam.SamPredictor(edgesam.load_model("edgesam-demo"))


class Recording:
    """The predictor with its frame set, keeping every prompt and its outputs (real decodes)."""

    def __init__(self, predictor: edgesam.SamPredictor) -> None:
        self.predictor = predictor
        self.original_size = predictor.original_size
        self.calls: list[tuple[dict, np.ndarray, np.ndarray]] = []

    def predict(self, **kwargs):
        masks, scores, low_res = self.predictor.predict(**kwargs)
        self.calls.append((kwargs, masks, scores))
        return masks, scores, low_res


def _track(predictor, frames, **kwargs) -> tuple[list, list[Recording]]:
    tracker = Tracker(point=(28, 40), **kwargs)
    results, records = [], []
    for frame in frames:
        predictor.set_image(frame)
        records.append(Recording(predictor))
        results.append(tracker.update(records[-1]))
    return results, records


@pytest.mark.parametrize("shape_weight", [0.0, 1.0])
def test_tracker_keeps_the_candidate_that_agrees_with_the_previous_mask(predictor, shape_weight) -> None:
    video = generate_video(20_000_003, VideoConfig(frames=8, occluder=False))
    tracker = Tracker(point=mask_center_point(video.masks[0]), motion=False, shape_weight=shape_weight,
                      use_mask_input=False)  # no "auto" check decoding one frame twice
    previous = None
    for frame in video.frames:
        predictor.set_image(frame)
        rec = Recording(predictor)
        result = tracker.update(rec)
        if previous is None:
            assert len(rec.calls) == 1  # the user's click, as given
        else:
            # box + click, the box alone, the click alone with its three multimask outputs
            kinds = [(k.get("box") is not None, "point_coords" in k, k["multimask_output"]) for k, _, _ in rec.calls]
            assert kinds == [(True, True, False), (True, False, False), (False, True, True)]
            candidates = [(m, float(s)) for _, masks, scores in rec.calls for m, s in zip(masks, scores)]
            assert len(candidates) == 5
            # without motion the prediction is the previous (trusted, here every frame) mask itself
            values = [s + shape_weight * iou(m, previous.mask) for m, s in candidates]
            best = candidates[int(np.argmax(values))]
            assert np.array_equal(result.mask, best[0]) and result.score == pytest.approx(best[1])
        assert not result.lost
        previous = result


def test_one_prompt_per_frame_without_candidates(predictor) -> None:
    frames = [disc_frame(t)[0] for t in range(3)]
    _, records = _track(predictor, frames, candidates=False, use_mask_input=False)
    assert [len(r.calls) for r in records] == [1, 1, 1]
    with pytest.raises(ValueError, match="shape_weight"):
        Tracker(point=(1, 1), shape_weight=-1)
    with pytest.raises(ValueError, match="size_memory"):
        Tracker(point=(1, 1), size_memory=1.0)


def test_a_partly_hidden_object_does_not_shrink_the_next_prompt_box(predictor) -> None:
    """Frame 3 hides the disc's right part behind background; frame 4 shows it whole again."""
    frames, discs = [], []
    for t in range(6):
        frame, disc = disc_frame(t, step=(1.5, 0.5))
        if t == 3:
            background, _ = disc_frame(0, start=(-100.0, -100.0))  # the same gradient, no disc
            hidden = np.zeros_like(disc)
            hidden[:, 34:] = True
            frame = np.where(hidden[..., None], background, frame)
            disc = disc & ~hidden
        frames.append(frame)
        discs.append(disc)
    widths = {}
    for memory in (0.9, 0.0):
        results, records = _track(predictor, frames, size_memory=memory)
        whole = results[2].box[2] - results[2].box[0]
        partial = results[3].box[2] - results[3].box[0]
        assert iou(results[3].mask, discs[3]) > 0.5 and partial < 0.8 * whole  # the model sees only a part
        box = records[4].calls[0][0]["box"]  # the prompt of the frame after it
        widths[memory] = (box[2] - box[0]) / whole
    # remembered size: the box still spans the whole disc; newest mask only: it shrinks to the part
    assert widths[0.9] >= 1.0 > widths[0.0], widths
