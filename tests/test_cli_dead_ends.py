"""Small newcomer dead ends: failed demo folders, overlay captions, history plot labels."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from edgesam.cli import main


def test_a_failed_demo_leaves_no_empty_folders(tmp_path: Path, capsys) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("remember the milk\n")
    out = tmp_path / "new" / "demo-out"
    assert main(["demo", str(notes), "-o", str(out), "--quick", "-q"]) == 2
    assert "notes.txt is a text file" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    existing = tmp_path / "mine"
    existing.mkdir()
    (existing / "keep.txt").write_text("x")
    assert main(["demo", str(notes), "-o", str(existing), "--quick", "-q"]) == 2
    assert sorted(p.name for p in existing.iterdir()) == ["keep.txt"]  # the user's folder stays as it was


def test_caption_names_what_made_the_image() -> None:
    from edgesam.viz import caption, describe_model

    class Meta:
        metadata = {"precision": "int8"}

    class Backend:
        name = "openvino"
        bundle = Meta()
        effective_precision = "bf16"

    text = describe_model(Backend(), "demo_int8")
    assert text == "model demo_int8 · openvino · int8 (ran bf16)"
    image = np.full((40, 300, 3), 30, np.uint8)
    out = caption(image, text)
    assert out.shape[1:] == (300, 3) and out.shape[0] > 40
    np.testing.assert_array_equal(out[:40], image)
    strip = out[40:]
    assert (strip == 255).mean() > 0.7 and (strip < 80).any()  # white strip with dark text


def test_a_long_caption_on_a_small_image_wraps_instead_of_being_cut() -> None:
    from edgesam.viz import caption

    text = "2 masks · model edgesam-demo · torch · fp32"

    def lines(strip: np.ndarray) -> int:  # bands of rows holding dark (text) pixels
        rows = (strip < 80).any(axis=(1, 2))
        return int(np.count_nonzero(rows[1:] & ~rows[:-1]) + rows[0])

    narrow = caption(np.full((96, 128, 3), 30, np.uint8), text)[96:]
    wide = caption(np.full((96, 1024, 3), 30, np.uint8), text)[96:]
    assert lines(wide) == 1 and lines(narrow) >= 2
    dark_columns = np.flatnonzero((narrow < 80).any(axis=(0, 2)))
    assert dark_columns.max() < 128 - 2  # the text ends inside the image: nothing cut off


def test_history_commit_labels_do_not_overlap() -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from edgesam.hardware import device_fingerprint
    from edgesam.bench.plots import _commit_axis
    from edgesam.bench.results import BenchConfig, ResultRow
    from edgesam.bench.timing import TimingStats

    config = BenchConfig(backend="onnxruntime", precision="fp32", arch="vit_t", image_size=128)
    rows = []
    for i, (commit, minutes) in enumerate([("aaaaaaa1", 0), ("bbbbbbb2", 1), ("ccccccc3", 2), ("ddddddd4", 600)]):
        row = ResultRow.create(config, {"encoder": TimingStats.from_samples([1.0])},
                               fingerprint={**device_fingerprint(), "git_commit": commit})
        row.timestamp = (ResultRow.create(config, {}).when + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
        rows.append(row)
    fig = Figure()
    ax = fig.subplots()
    ax.plot([r.when for r in rows], [1, 1, 1, 1])
    _commit_axis(ax, rows)
    top = ax.child_axes[0] if ax.child_axes else None
    assert top is not None
    labels = [t.get_text() for t in top.get_xticklabels()]
    assert labels == ["ccccccc", "ddddddd"]  # the three commits a minute apart share the newest's tick
