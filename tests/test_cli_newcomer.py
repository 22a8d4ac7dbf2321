"""A newcomer's dead ends in the command line (issue #12): existing outputs, ``--overwrite`` that
deletes only bundles, lossless masks, MODEL before the input, clean stdout with ``--json``,
one-line warnings, a closed stdout, the model list, and runs that fail before doing anything.

Real CLI runs on the embedded ``edgesam-demo`` model exported once per module (128 px).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgesam.bundle.format import METADATA_FILE, check_replaceable, publish_folder
from edgesam.cli import main

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


def _photo(path: Path) -> Path:
    """A small real PNG (a user's photo that must never be deleted)."""
    import cv2

    image = np.full((96, 128, 3), 40, np.uint8)
    image[20:70, 30:90] = (60, 60, 200)
    assert cv2.imwrite(str(path), image)
    return path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(fp32 bundle of edgesam-demo, scene image)."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from edgesam.export import export_bundle

    tmp = tmp_path_factory.mktemp("newcomer")
    bundle = export_bundle("edgesam-demo", tmp / "demo_bundle")
    return bundle, _photo(tmp / "scene.png")


# ----------------------------------------------------------------------------- existing outputs


def test_an_existing_output_is_a_one_line_error_before_any_work(demo, tmp_path: Path, capsys) -> None:
    bundle, _ = demo
    # the output is checked first: the missing model would otherwise be the error
    assert main(["export", str(tmp_path / "nowhere.pth"), "-o", str(bundle)]) == 2
    assert capsys.readouterr().err == f"edgesam export: error: {bundle} exists; add --overwrite to replace it\n"
    taken = tmp_path / "demo_int8"
    taken.mkdir()
    assert main(["quantize", str(tmp_path / "nowhere"), "--backend", "onnxruntime", "-o", str(taken)]) == 2
    assert capsys.readouterr().err == f"edgesam quantize: error: {taken} exists; add --overwrite to replace it\n"
    assert main(["deploy", str(tmp_path / "nowhere.pth"), "-o", str(taken)]) == 2
    assert capsys.readouterr().err == f"edgesam deploy: error: {taken} exists; add --overwrite to replace it\n"


def test_overwrite_never_deletes_a_file_or_a_folder_of_other_things(demo, tmp_path: Path, capsys) -> None:
    bundle, _ = demo
    photo = _photo(tmp_path / "x.png")
    before = photo.read_bytes()
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "keep.txt").write_text("mine")
    for target in (photo, notes):
        assert main(["export", "edgesam-demo", "-o", str(target), "--overwrite"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"edgesam export: error: {target} is ") and "--overwrite replaces only a bundle" in err
        assert err.count("\n") == 1
        assert main(["quantize", str(bundle), "--backend", "onnxruntime", "-o", str(target), "--overwrite"]) == 2
        assert "--overwrite replaces only a bundle folder or an empty folder" in capsys.readouterr().err
    assert photo.read_bytes() == before and (notes / "keep.txt").read_text() == "mine"

    # the library functions that remove the old output refuse the same way (Python callers too)
    from edgesam.deploy import deploy
    from edgesam.export import export_bundle
    from edgesam.quantization import quantize_bundle
    from edgesam.quantization.fp16 import fp16_bundle

    for call in (lambda: export_bundle("edgesam-demo", photo, overwrite=True),
                 lambda: quantize_bundle(bundle, photo, backend="onnxruntime", overwrite=True),
                 lambda: fp16_bundle(bundle, photo, overwrite=True),
                 lambda: deploy("edgesam-demo", photo, overwrite=True, log=lambda _m: None)):  # fmt: skip
        with pytest.raises(ValueError, match="is a file; overwrite replaces only a bundle folder or an empty folder"):
            call()
    staged = tmp_path / "staged"
    staged.mkdir()
    with pytest.raises(ValueError, match="not an edgesam bundle"):
        publish_folder(staged, notes)
    assert photo.read_bytes() == before and (notes / "keep.txt").read_text() == "mine" and staged.is_dir()
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        check_replaceable(bundle, overwrite=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    check_replaceable(empty, overwrite=True)  # an empty folder or a bundle may be replaced
    check_replaceable(bundle, overwrite=True)
    (staged / METADATA_FILE).write_text("{}")
    publish_folder(staged, empty)
    assert (empty / METADATA_FILE).is_file() and not staged.exists()


# ----------------------------------------------------------------------------- segment's outputs and order


def test_segment_checks_its_outputs_first_and_writes_lossless_masks(demo, tmp_path: Path, capsys) -> None:
    import cv2

    bundle, image = demo
    folder = tmp_path / "folder"
    folder.mkdir()
    base = ["segment", str(bundle), str(image), "--point", "60,45"]
    assert main([*base, "-o", str(folder)]) == 2
    assert capsys.readouterr().err == (f"edgesam segment: error: -o {folder} is a folder; give an image file name "
                                       f"such as {folder / 'mask.png'}\n")  # fmt: skip
    assert main([*base, "-o", str(tmp_path / "m.png"), "--overlay", str(folder)]) == 2
    assert f"--overlay {folder} is a folder" in capsys.readouterr().err
    assert main([*base, "-o", str(tmp_path / "m.jpg")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lossless format (.png, .bmp, .tif, .tiff)" in err
    assert list(tmp_path.iterdir()) == [folder]  # nothing written

    assert main([*base, "-o", str(tmp_path / "m.bmp"), "--overlay", str(tmp_path / "o.jpg")]) == 0
    out = capsys.readouterr().out
    assert re.match(r"mask [123] of 3: score", out), out  # counted from 1, as the web page does
    mask = cv2.imread(str(tmp_path / "m.bmp"), cv2.IMREAD_GRAYSCALE)
    assert set(np.unique(mask)) <= {0, 255} and mask.max() == 255
    assert (tmp_path / "o.jpg").is_file()


def test_model_comes_first(demo, tmp_path: Path, capsys) -> None:
    bundle, image = demo
    assert main(["segment", str(image), str(bundle), "--point", "60,45", "-o", str(tmp_path / "m.png")]) == 2
    assert capsys.readouterr().err == ("edgesam segment: error: MODEL comes first: edgesam segment MODEL IMAGE ... "
                                       f"(here: edgesam segment {bundle} {image} ...)\n")  # fmt: skip
    assert main(["everything", str(image), "edgesam-demo", "-o", str(tmp_path / "all.json")]) == 2
    assert "MODEL comes first: edgesam everything MODEL IMAGE" in capsys.readouterr().err
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"")
    assert main(["stream", str(clip), str(bundle), "--point", "1,1", "-o", str(tmp_path / "o.mp4")]) == 2
    assert "MODEL comes first: edgesam stream MODEL VIDEO" in capsys.readouterr().err
    # an image given where a video belongs is a still image, not a 1-frame video
    assert main(["stream", str(bundle), str(image), "--point", "1,1", "-o", str(tmp_path / "o.mp4")]) == 2
    err = capsys.readouterr().err
    assert "is a still image, not a video" in err and "edgesam segment" in err
    assert list(tmp_path.iterdir()) == [clip]


def test_warnings_are_one_clean_line(demo, tmp_path: Path, capsys) -> None:
    bundle, image = demo
    assert main(["segment", str(bundle), str(image), "--box", "-10,20,90,70", "-o", str(tmp_path / "m.png")]) == 0
    err = capsys.readouterr().err
    assert err == ("edgesam segment: warning: 1 box reaches outside the 128x96 (width x height) image and was "
                   "clipped to it, e.g. [-10.0, 20.0, 90.0, 70.0] -> [0.0, 20.0, 90.0, 70.0]\n")  # fmt: skip


# ----------------------------------------------------------------------------- stdout holds only the result


def test_quantize_json_stdout_is_only_json_and_quiet_is_quiet(demo, tmp_path: Path, capsys) -> None:
    bundle, _ = demo
    argv = ["quantize", str(bundle), "--backend", "onnxruntime", "--recipe", "ort-int8-entropy", "--no-gate",
            "--allow-slow"]
    proc = subprocess.run([sys.executable, "-m", "edgesam", *argv, "-o", str(tmp_path / "a"), "--json"],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["bundle"] == str(tmp_path / "a")  # the whole of stdout is the document
    assert "Collecting tensor data" in proc.stderr  # ONNX Runtime's calibration prints moved, not lost
    assert main([*argv, "-o", str(tmp_path / "b"), "-q"]) == 0
    out, err = capsys.readouterr()
    assert "Collecting tensor data" not in out + err and "Finding optimal threshold" not in out + err
    assert out.rstrip().endswith(f"bundle: {tmp_path / 'b'}")


def test_a_closed_stdout_ends_quietly(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "edgesam", "models", "--json"], cwd=tmp_path, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    proc.stdout.close()  # the reader is gone before the command writes (as `| head -1` after its line)
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141 and err == ""


# ----------------------------------------------------------------------------- models, demo, bench


def test_models_lists_the_embedded_model_aligned(capsys) -> None:
    assert main(["models", "--json"]) == 0
    models = json.loads(capsys.readouterr().out)["models"]
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    demo = next(m for m in models if m["name"] == "edgesam-demo")
    assert "synthetic scenes" in demo["summary"] and demo["license"].startswith("Apache-2.0")
    starts = set()
    for model in models:
        line = next(text for text in lines if text.startswith(model["name"] + " "))
        assert f"{model['summary']}; license {model['license']}" in line
        starts.add(line.index(model["summary"]))
    assert len(starts) == 1  # the descriptions start in one column


def test_runtime_only_install_models_and_demo(tmp_path: Path) -> None:
    from torch_blocker import BLOCK_TORCH

    script = BLOCK_TORCH + "import sys\nfrom edgesam.cli import main\nraise SystemExit(main(sys.argv[1:]))\n"
    models = subprocess.run([sys.executable, "-c", script, "models"], cwd=tmp_path, env=_env(),
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert models.returncode == 0, models.stderr
    assert "torch is not installed (a runtime-only install): loading any model above needs it" in models.stdout
    demo = subprocess.run([sys.executable, "-c", script, "demo", "-o", str(tmp_path / "out"), "--quick"],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120)  # fmt: skip
    assert demo.returncode == 2 and demo.stdout == ""  # no banner, no "1/5 export" before the failure
    assert demo.stderr.startswith("edgesam demo: error: edgesam demo (it exports the model with torch) needs torch")
    assert not (tmp_path / "out").exists()


def test_demo_and_bench_fail_before_making_folders(tmp_path: Path, capsys) -> None:
    photo = _photo(tmp_path / "y.png")
    assert main(["demo", "-o", str(photo), "--quick"]) == 2
    err = capsys.readouterr().err
    assert "y.png exists and is not a folder; -o names the demo's output folder" in err
    assert "--results-dir" not in err
    results = tmp_path / "new" / "results"
    assert main(["bench", str(tmp_path / "missing.pth"), "-o", str(results), "-q"]) == 2
    assert "missing.pth: no such checkpoint file" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()  # the failed run left no empty results folder
    empty = tmp_path / "history"
    empty.mkdir()
    assert main(["bench", "report", "--results-dir", str(empty)]) == 2
    assert capsys.readouterr().err == (f"edgesam bench report: error: no benchmark results found in {str(empty)!r}: "
                                       f"run `edgesam bench -o {empty}` first (it measures this machine and "
                                       "appends the rows there)\n")  # fmt: skip


def test_messages_name_current_spellings(demo, tmp_path: Path) -> None:
    """The offline checkpoint hint and the wrong-runtime hint name what works today."""
    import shutil

    from edgesam.bundle.catalogue import resolve
    from edgesam.runtimes.loader import load_backend
    from edgesam.bundle.format import BundleError

    os.environ["EDGESAM_HOME"], old = str(tmp_path / "home"), os.environ.get("EDGESAM_HOME")
    try:
        with pytest.raises(FileNotFoundError) as info:
            resolve("mobile_sam", download=False)
    finally:
        if old is None:
            del os.environ["EDGESAM_HOME"]
        else:
            os.environ["EDGESAM_HOME"] = old
    assert "--checkpoint" not in str(info.value) and "as MODEL on the command line" in str(info.value)

    bundle, _ = demo
    ov_only = shutil.copytree(bundle, tmp_path / "ov_only")
    meta = json.loads((ov_only / METADATA_FILE).read_text())
    meta["quantization"] = {"runs_on": ["openvino"]}
    (ov_only / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=r"--backend openvino.*edgesam quantize FP32_BUNDLE --backend onnxruntime"
                                          r".*needs the full install"):
        load_backend(ov_only, "onnxruntime")
