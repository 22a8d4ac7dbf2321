"""One CLI grammar: every command's parser takes what the README table says, old spellings still
work and warn, and real runs of the new grammar (segment with a checkpoint file and with a bundle
folder, ``--json`` output) give the same answer.

The commands are read from :func:`edgesam.cli.build_parser`; nothing here lists them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from edgesam.bundle import METADATA_FILE
from edgesam.cli import build_parser, main, parse_args
from edgesam.commands.grammar import finish, grammar_of, grammar_table

REPO = Path(__file__).resolve().parents[1]
OLD_OPTIONS = ("--checkpoint", "--bundle", "--model", "--teacher", "--output", "--no-progress", "--results-dir")


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


COMMANDS = _commands()


def _argv(name: str, parser: argparse.ArgumentParser, *, model: str | None = "MODEL_X") -> list[str]:
    """A minimal command line for ``parser``: every positional and required option filled in."""
    g = grammar_of(parser)
    dest = parser.get_default("_model_dest")
    argv: list[str] = []
    for action in parser._actions:
        if action.option_strings or isinstance(action, argparse._SubParsersAction):
            continue
        if action.dest == dest:
            if model is not None:
                argv.append(model)
        else:
            argv.append(f"{action.dest.upper()}_X")
    required = [a for a in parser._actions if a.option_strings and a.required]
    required += [grp._group_actions[-1] for grp in parser._mutually_exclusive_groups if grp.required]
    for action in required:
        value = str(action.choices[0]) if action.choices else "1" if action.type is int else "X"
        argv += [action.option_strings[-1], *([value] * (action.nargs if isinstance(action.nargs, int) else 1))]
    if g.out == "required":
        argv += ["-o", "OUT_X"]
    return [name, *argv]


def _parse(argv: list[str]) -> argparse.Namespace:
    return finish(parse_args(argv))


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_declares_its_grammar(name: str) -> None:
    g = grammar_of(COMMANDS[name])
    assert g.model or g.out or g.options, f"edgesam {name} uses none of the grammar helpers"
    for action in COMMANDS[name]._actions:  # an old spelling is never shown as the way to do it
        for option in set(action.option_strings) & set(OLD_OPTIONS):
            if option == "--results-dir" and not action.dest.startswith("legacy_out"):
                continue  # an input folder (deploy's bench history, bench report's results)
            if option == "--teacher" and COMMANDS[name].get_default("_model_dest") != "teacher":
                continue  # eval's second model, the reference it compares with
            assert action.help == argparse.SUPPRESS, f"edgesam {name} shows the old spelling {option}"
            assert option in g.deprecated


@pytest.mark.parametrize("name", sorted(n for n, p in COMMANDS.items() if grammar_of(p).model))
def test_model_is_positional(name: str) -> None:
    parser = COMMANDS[name]
    g, dest = grammar_of(parser), parser.get_default("_model_dest")
    assert getattr(_parse(_argv(name, parser)), dest) == "MODEL_X"
    if g.model == "required":
        with pytest.raises(ValueError, match="give MODEL"):
            _parse(_argv(name, parser, model=None))
    else:
        assert getattr(_parse(_argv(name, parser, model=None)), dest) in (g.model_default, None)
        if parser.get_default("_model_default") is not None:
            assert getattr(_parse(_argv(name, parser, model=None)), dest) == g.model_default
    if "--backend" in g.options:
        assert _parse([*_argv(name, parser), "--backend", "openvino"]).backend == "openvino"


@pytest.mark.parametrize("name", sorted(n for n, p in COMMANDS.items() if grammar_of(p).out))
def test_output_is_dash_o(name: str) -> None:
    parser = COMMANDS[name]
    base = [a for a in _argv(name, parser) if a not in ("-o", "OUT_X")]
    for flag in ("-o", "--out"):
        assert _parse([*base, flag, "THERE"]).out == "THERE"
    if grammar_of(parser).out == "required":
        with pytest.raises(ValueError, match="-o/--out"):
            _parse(base)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_common_options(name: str) -> None:
    parser = COMMANDS[name]
    g, argv = grammar_of(parser), _argv(name, parser)
    if "--threads" in g.options:
        assert _parse([*argv, "--threads", "3"]).threads == 3
        with pytest.raises(ValueError, match="--threads"):
            _parse([*argv, "--threads", "0"])
    if "-q/--quiet" in g.options:
        assert _parse([*argv, "-q"]).quiet and _parse([*argv, "--quiet"]).quiet
        assert not _parse(argv).quiet
    if "--json" in g.options:
        assert _parse([*argv, "--json"]).json is True and not _parse(argv).json
    for option, name_in_table in (("--threads", "--threads"), ("--json", "--json"), ("--quiet", "-q/--quiet")):
        assert (option in parser._option_string_actions) == (name_in_table in g.options), option


@pytest.mark.parametrize("name", sorted(n for n, p in COMMANDS.items() if grammar_of(p).deprecated))
def test_old_spellings_work_and_warn(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    parser = COMMANDS[name]
    g, dest = grammar_of(parser), parser.get_default("_model_dest")
    for old, new in g.deprecated.items():
        capsys.readouterr()
        if old == "--json PATH":
            args = _parse([*_argv(name, parser), "--json", "stats.json"])
            assert args.json_out == "stats.json" and not args.json
        elif new == "MODEL":
            args = _parse([*_argv(name, parser, model=None), old, "OLD_MODEL"])
            assert getattr(args, dest) == "OLD_MODEL"
        elif new == "-o/--out":
            args = _parse([*[a for a in _argv(name, parser) if a not in ("-o", "OUT_X")], old, "OLD_OUT"])
            assert args.out == "OLD_OUT"
        else:
            assert new == "-q/--quiet"
            assert _parse([*_argv(name, parser), old]).quiet is True
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"{old} is deprecated" in err[0] and new in err[0], err
        if new in ("MODEL", "-o/--out"):  # given both ways: refused
            both = [*_argv(name, parser), old, "OLD"] if new == "MODEL" else [*_argv(name, parser), old, "OLD_OUT"]
            if new == "-o/--out" and g.out != "required":
                both += ["-o", "NEW_OUT"]
            with pytest.raises(ValueError, match="not both"):
                _parse(both)


def _inputs(parser: argparse.ArgumentParser) -> list[str]:
    """The positionals besides MODEL."""
    return [a.dest for a in parser._actions if not a.option_strings and a.dest != parser.get_default("_model_dest")
            and not isinstance(a, argparse._SubParsersAction)]


@pytest.mark.parametrize("name", sorted(n for n, p in COMMANDS.items() if grammar_of(p).model and _inputs(p)))
def test_an_option_between_model_and_input_is_fine(name: str) -> None:
    parser = COMMANDS[name]
    argv = _argv(name, parser)
    dest, inputs = parser.get_default("_model_dest"), _inputs(parser)
    at = argv.index("MODEL_X")
    split = [*argv[: at + 1], "--threads", "2", *argv[at + 1 :]]
    args = _parse(split)
    assert (getattr(args, dest), getattr(args, inputs[0]), args.threads) == ("MODEL_X", f"{inputs[0].upper()}_X", 2)
    with pytest.raises(SystemExit):
        _parse([*split, "STRAY"])


def test_bench_report_is_reached_as_before() -> None:
    args = _parse(["bench", "report", "--results-dir", "R", "-o", "OUT"])
    assert args.func.__name__ == "run_report" and (args.report_results_dir, args.out) == ("R", "OUT")
    args = _parse(["bench", "--results-dir", "R", "report"])
    assert args.func.__name__ == "run_report" and args.report_results_dir == "R"
    assert _parse(["bench", "vit_t_bundle"]).func.__name__ == "run"


def test_readme_table_is_the_parsers_table() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert grammar_table(build_parser()) in readme, "README's Command-line grammar table is stale: " \
        "paste edgesam.commands.grammar.grammar_table(edgesam.cli.build_parser())"


# ----------------------------------------------------------------------------- real runs
@pytest.fixture(scope="module")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, str]:
    """(embedded checkpoint file, bundle folder to export to, scene image, "X,Y" inside its largest object)."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    import cv2

    from edgesam.distillation.demo_config import DEMO_SCENES
    from edgesam.scenes import generate_scene
    from edgesam.io import write_image
    from edgesam.bundle.catalogue import embedded_models

    tmp = tmp_path_factory.mktemp("grammar")
    scene = generate_scene(20_000_005, DEMO_SCENES)
    image = write_image(tmp / "scene.png", scene.image)
    largest = scene.masks[int(np.argmax(scene.masks.sum(axis=(1, 2))))].astype(np.uint8)
    y, x = np.unravel_index(np.argmax(cv2.distanceTransform(largest, cv2.DIST_L2, 3)), largest.shape)
    return embedded_models()["edgesam-demo"], tmp / "demo_bundle", image, f"{x},{y}"


def _json_run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[dict, str]:
    assert main(argv) == 0
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert len(lines) == 1, out  # --json: one JSON document on stdout, nothing else
    return json.loads(lines[0]), err


def test_export_and_segment_in_the_new_grammar(demo_files, tmp_path: Path, capsys) -> None:
    from edgesam.io import read_image

    checkpoint, bundle, image, point = demo_files
    exported, _ = _json_run(["export", str(checkpoint), "-o", str(bundle), "--threads", "1", "--json"], capsys)
    assert Path(exported["bundle"]) == bundle.absolute() or Path(exported["bundle"]) == bundle
    assert exported["arch"] and (bundle / METADATA_FILE).is_file()

    click = ["--point", point, "--single", "--threads", "1", "--json"]
    torch_run, _ = _json_run(["segment", str(checkpoint), str(image), "-o", str(tmp_path / "t.png"), *click], capsys)
    ort_run, _ = _json_run(["segment", str(bundle), str(image), "-o", str(tmp_path / "b.png"), *click], capsys)
    assert (torch_run["backend"], ort_run["backend"]) == ("torch", "onnxruntime")
    a, b = read_image(tmp_path / "t.png")[..., 0] > 127, read_image(tmp_path / "b.png")[..., 0] > 127
    assert a.sum() == torch_run["area"] and b.sum() == ort_run["area"] and a.any()
    assert (a & b).sum() / (a | b).sum() > 0.95
    assert abs(torch_run["score"] - ort_run["score"]) < 0.02

    # the old spelling gives the same mask, says it is deprecated, and -q/plain output is human text
    assert main(["segment", str(image), "--bundle", str(bundle), "--out", str(tmp_path / "old.png"),
                 "--point", point, "--single"]) == 0
    out, err = capsys.readouterr()
    assert "--bundle is deprecated" in err and out.startswith("mask 1 of 1: score")
    np.testing.assert_array_equal(read_image(tmp_path / "old.png"), read_image(tmp_path / "b.png"))

    # everything: -q keeps stderr free of progress, --json is the summary of the file written
    found, err = _json_run(["everything", str(bundle), str(image), "-o", str(tmp_path / "all.json"), "-q", "--json",
                            "--points-per-side", "4", "--pred-iou-thresh", "0", "--stability-score-thresh", "0"],
                           capsys)  # fmt: skip
    assert err == "" and found["backend"] == "onnxruntime" and found["out"] == str(tmp_path / "all.json")
    assert found["masks"] == len(json.loads((tmp_path / "all.json").read_text())["masks"]) > 0
    listed, _ = _json_run(["models", "--json"], capsys)
    assert {"edgesam-demo", "mobile_sam"} <= {m["name"] for m in listed["models"]}


def test_cli_errors_stay_one_line(demo_files, tmp_path: Path, capsys) -> None:
    image = demo_files[2]
    assert main(["segment", str(tmp_path / "nowhere"), str(image), "--point", "1,1", "-o", str(tmp_path / "m.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"edgesam segment: error: {tmp_path / 'nowhere'}: no such checkpoint file or bundle folder"
    assert main(["export", "-o", str(tmp_path / "b")]) == 2
    assert "give MODEL" in capsys.readouterr().err
