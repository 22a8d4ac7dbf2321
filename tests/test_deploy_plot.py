"""``deploy.png``: every candidate's label sits beside its own point, clear of the others."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from edgesam.deploy import CandidateResult
from edgesam.deploy.report import write_plot

matplotlib = pytest.importorskip("matplotlib")


def _cand(name: str, p50: float, iou: float, status: str = "rejected") -> CandidateResult:
    return CandidateResult(name, name.split("-")[0], "int8" if "int8" in name else "fp32", status=status,
                           latency_ms={"first_mask": {"p50_ms": p50, "p90_ms": p50 * 1.1}},
                           fidelity={"mask_iou_mean": iou})  # fmt: skip


# The crowded case a newcomer met: two INT8 candidates about as fast and as faithful as each other
# (and the chosen fp32 one just above them), where labels used to land on the neighbour's dot.
CROWDED = [_cand("torch-fp32", 91.5, 1.0, "passed"), _cand("onnxruntime-fp32", 30.3, 1.0, "passed"),
           _cand("openvino-fp32", 9.5, 1.0, "chosen"), _cand("openvino-int8", 8.6, 0.9580),
           _cand("onnxruntime-int8", 9.9, 0.9584), _cand("openvino-int8-nncf", 13.9, 0.9652),
           _cand("openvino-bf16", 9.0, 0.9581), CandidateResult("tensorrt-fp16", "tensorrt", "fp16")]


def _geometry(results, min_iou=0.97):
    """(figure, renderer, {label text: (text box, point xy in pixels, marker radius px, has leader)})."""
    from matplotlib.collections import PathCollection
    from matplotlib.text import Text

    from edgesam.deploy.plot import deploy_figure

    fig = deploy_figure(results, min_iou)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    markers = []
    for coll in ax.collections:
        assert isinstance(coll, PathCollection)
        for (x, y), size in zip(coll.get_offsets(), coll.get_sizes()):
            markers.append((tuple(ax.transData.transform((x, y))), math.sqrt(size) / 2 * fig.dpi / 72))
    labels = {}
    for ann in ax.texts:
        box = Text.get_window_extent(ann, renderer)
        labels[ann.get_text()] = (box, tuple(ax.transData.transform(ann.xy)), ann.arrow_patch is not None)
    return fig, ax, renderer, markers, labels


def _hits(box, centre, radius) -> bool:
    """Whether a text box and a round marker overlap (marker taken as its bounding square)."""
    (cx, cy), r = centre, radius
    return box.x0 < cx + r and box.x1 > cx - r and box.y0 < cy + r and box.y1 > cy - r


def _distance(box, point) -> float:
    dx = max(box.x0 - point[0], 0.0, point[0] - box.x1)
    dy = max(box.y0 - point[1], 0.0, point[1] - box.y1)
    return math.hypot(dx, dy)


@pytest.mark.parametrize("results", [CROWDED, CROWDED[:2] + [_cand("same-a", 20.0, 0.99, "chosen"),
                                                            _cand("same-b", 20.0, 0.99)]])
def test_every_label_is_beside_its_own_point_and_hides_nothing(results) -> None:
    fig, ax, renderer, markers, labels = _geometry(results)
    measured = [r for r in results if r.p50() is not None]
    assert len(labels) == len(measured) == len(markers)  # one label per measured point; unmeasured ones none
    frame = ax.get_window_extent(renderer)
    legend = ax.get_legend().get_window_extent(renderer)
    boxes = list(labels.values())
    for i, (text, (box, own, leader)) in enumerate(labels.items()):
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1, text
        assert not box.overlaps(legend), text
        for centre, radius in markers:
            assert not _hits(box, centre, radius), f"{text!r} covers the point at {centre}"
        for other_box, _, _ in boxes[i + 1:]:
            assert not box.overlaps(other_box), text
        if not leader:  # without a leader line, the nearest point to a label is its own
            others = [c for c, _ in markers if math.dist(c, own) > 1.0]
            assert all(_distance(box, own) < _distance(box, c) for c in others), text
    names = {t.split(" (chosen)")[0] for t in labels}
    assert names == {r.name for r in measured}
    assert any(t.endswith("(chosen)") for t in labels)


def test_plot_file_size_and_statuses(tmp_path: Path) -> None:
    path = write_plot(tmp_path, CROWDED, 0.97)
    assert path == tmp_path / "deploy.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    assert matplotlib.image.imread(str(path)).shape[:2] == (450, 700)
    _, ax, _, _, _ = _geometry(CROWDED)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["chosen", "passed", "rejected",
                                                                   "min mask IoU 0.97"]
    assert ax.get_xlim()[0] >= 0.0
