"""The one flag grammar of the ``edgesam`` commands, and the old spellings it replaces.

    edgesam COMMAND [MODEL] ... [-o OUT] [--threads N] [-q] [--json]

* ``MODEL`` (positional): a model name (``edgesam models``), a checkpoint file or a bundle
  folder, with ``--backend`` to choose the runtime (:func:`edgesam.load_predictor`).
* ``-o/--out``: what the command writes.
* ``--threads N``: intra-op threads; ``-q/--quiet``: no progress output, only the result;
  ``--json``: the result as one JSON document on stdout (human lines go to stderr).

Each command builds its parser with the helpers below; they record what the command takes
(:class:`Grammar`, read back with :func:`grammar_of`) so that the README table and the tests
come from the parsers themselves. Old spellings stay accepted for one release: they are hidden
from ``--help`` and :func:`finish` moves their values to the new names, printing one
deprecation line per spelling on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

__all__ = [
    "DEFAULT_MODEL", "Grammar", "Output", "add_json", "adopt_common", "adopt_option", "add_model", "add_out", "add_quiet", "add_threads",
    "finish", "grammar_of", "grammar_table", "join_positionals", "legacy_option", "note_input", "predictor_for",
    "rewrite_argv",
]  # fmt: skip

DEFAULT_MODEL = "edgesam-demo"
_ATTR = "_edgesam_grammar"


@dataclass
class Grammar:
    """What one command's parser takes (filled in by the ``add_*`` helpers).

    Attributes:
        model: ``"required"``, ``"optional"`` or ``""`` (the command reads no model).
        model_default: the model used when an optional MODEL is left out.
        model_note: what MODEL must be for this command, where it is narrower than usual.
        out: ``"required"``, ``"optional"`` or ``""``; out_note: what is written; out_when: the table's
            word for an output required only sometimes (e.g. ``"required for a video"``).
        options: the common options taken (``--backend``, ``--threads``, ``-q/--quiet``, ``--json``).
        deprecated: old spelling -> new one.
    """

    model: str = ""
    model_default: str | None = None
    model_note: str = ""
    out: str = ""
    out_note: str = ""
    out_when: str = ""
    options: list[str] = field(default_factory=list)
    deprecated: dict[str, str] = field(default_factory=dict)


def grammar_of(parser: argparse.ArgumentParser) -> Grammar:
    """The :class:`Grammar` recorded on ``parser`` (an empty one for a parser without helpers)."""
    found = getattr(parser, _ATTR, None)
    if found is None:
        found = Grammar()
        setattr(parser, _ATTR, found)
    return found


def _legacy_dest(dest: str, spelling: str) -> str:
    return f"legacy_{dest}__{spelling.strip('-').replace('-', '_')}"


def _legacy(parser: argparse.ArgumentParser, *, dest: str, spelling: str, new: str, flag: bool = False) -> None:
    """Remember that the old ``spelling`` of ``new`` is parsed into its own attribute (see :func:`finish`)."""
    grammar_of(parser).deprecated[spelling] = new
    table = parser.get_default("_legacy") or []
    parser.set_defaults(_legacy=[*table, (_legacy_dest(dest, spelling), dest, spelling, new, flag)])


def legacy_option(parser: argparse.ArgumentParser, option: str, *, dest: str, new: str,
                  flag: bool = False) -> None:  # fmt: skip
    """Accept the old ``option`` (hidden from ``--help``) as a spelling of ``new`` (``args.<dest>``)."""
    if flag:
        parser.add_argument(option, dest=_legacy_dest(dest, option), action="store_true", help=argparse.SUPPRESS)
    else:
        parser.add_argument(option, dest=_legacy_dest(dest, option), default=None, help=argparse.SUPPRESS)
    _legacy(parser, dest=dest, spelling=option, new=new, flag=flag)


def _action(parser: argparse.ArgumentParser, option: str) -> argparse.Action:
    action = parser._option_string_actions.get(option)  # argparse's option table
    if action is None:
        raise ValueError(f"{parser.prog} has no option {option}")
    return action


def adopt_option(parser: argparse.ArgumentParser, option: str, *, dest: str, new: str) -> None:
    """Turn ``option``, defined by a parser built elsewhere, into a hidden old spelling of ``new``."""
    action = _action(parser, option)
    action.dest, action.required, action.help, action.default = _legacy_dest(dest, option), False, argparse.SUPPRESS, None
    _legacy(parser, dest=dest, spelling=option, new=new)


def adopt_common(parser: argparse.ArgumentParser, *options: str, out: str = "") -> None:
    """Record common options a parser built elsewhere already has; ``out``: what its ``--out`` writes
    (``-o`` is added as its short form)."""
    g = grammar_of(parser)
    for option in options:
        _action(parser, option.split("/")[-1])
        g.options.append(option)
    if out:
        action = _action(parser, "--out")
        if "-o" in parser._option_string_actions:
            raise ValueError(f"{parser.prog} already has -o")
        action.option_strings.insert(0, "-o")
        parser._option_string_actions["-o"] = action
        g.out, g.out_note = ("required" if action.required else "optional"), out


def add_model(parser: argparse.ArgumentParser, *, required: bool, default: str | None = None, dest: str = "model",
              note: str = "", legacy: tuple[str, ...] = ("--checkpoint", "--bundle"), backend: bool = True,
              runtime_options: bool = True) -> None:  # fmt: skip
    """Positional ``MODEL`` (+ ``--backend``, and ``--precision``/``--device``/``--no-precision-check``).

    The positional is optional to argparse so that the old spellings still parse; :func:`finish`
    enforces ``required`` and fills in ``default``.
    """
    what = note or "model name (see `edgesam models`), checkpoint file (.pth/.pt/.safetensors) or bundle folder"
    shown = f" (default: {default})" if default else ""
    parser.add_argument(dest, nargs="?", metavar="MODEL", default=None, help=what + shown)
    for option in legacy:
        legacy_option(parser, option, dest=dest, new="MODEL")
    g = grammar_of(parser)
    g.model, g.model_default, g.model_note = ("required" if required else "optional"), default, note
    parser.set_defaults(_model_dest=dest, _model_required=required, _model_default=default)
    if backend:
        parser.add_argument("--backend", default=None,
                            help="runtime: torch (checkpoints), onnxruntime, openvino, tensorrt (bundles; default: the "
                                 "choice recorded by `edgesam deploy`, else onnxruntime)")  # fmt: skip
        g.options.append("--backend")
    if runtime_options:
        parser.add_argument("--precision", default=None, help="float precision: fp32, bf16, fp16 (default: the "
                            "model's own; a lower one is checked against the bundle's golden outputs)")  # fmt: skip
        parser.add_argument("--no-precision-check", action="store_true",
                            help="accept a lowered --precision without the golden-output check")  # fmt: skip
        parser.add_argument("--device", default=None,
                            help="torch device (cpu, cuda:0), OpenVINO device (CPU, GPU) or TensorRT GPU index")


def add_out(parser: argparse.ArgumentParser, *, required: bool, help: str, legacy: tuple[str, ...] = (),
            default: str | None = None, metavar: str = "OUT", when: str = "") -> None:  # fmt: skip
    """``-o/--out OUT`` (``required`` is enforced by :func:`finish`, so old spellings still parse;
    ``when``: for an optional OUT the command requires in some cases, those cases, shown in the table)."""
    parser.add_argument("-o", "--out", default=default, metavar=metavar, help=help)
    parser.set_defaults(_default_out=default)
    for option in legacy:
        legacy_option(parser, option, dest="out", new="-o/--out")
    g = grammar_of(parser)
    g.out, g.out_note, g.out_when = ("required" if required else "optional"), help, when
    if required:
        parser.set_defaults(_out_required=True)


def add_threads(parser: argparse.ArgumentParser, *, default: int | None = None) -> None:
    """``--threads N``: intra-op threads."""
    shown = f"default {default}" if default else "default: the runtime's own"
    parser.add_argument("--threads", type=int, default=default, metavar="N", help=f"intra-op threads ({shown})")
    grammar_of(parser).options.append("--threads")


def add_quiet(parser: argparse.ArgumentParser, *, help: str = "no progress output; print only the result",
              legacy: tuple[str, ...] = ()) -> None:  # fmt: skip
    """``-q/--quiet`` (old ``--no-progress`` spellings map onto it)."""
    parser.add_argument("-q", "--quiet", action="store_true", help=help)
    for option in legacy:
        legacy_option(parser, option, dest="quiet", new="-q/--quiet", flag=True)
    grammar_of(parser).options.append("-q/--quiet")


def add_json(parser: argparse.ArgumentParser, *, help: str = "print the result as JSON on stdout "
             "(other lines go to stderr)", file_option: bool = False) -> None:  # fmt: skip
    """``--json`` (a flag); with ``file_option``, also ``--json-out PATH`` (the old ``--json PATH``)."""
    parser.add_argument("--json", action="store_true", help=help)
    parser.set_defaults(_json_result=True)  # the JSON goes through Output.result: see edgesam.cli.main
    g = grammar_of(parser)
    g.options.append("--json")
    if file_option:
        parser.add_argument("--json-out", metavar="PATH", help="also write the JSON result to PATH")
        g.deprecated["--json PATH"] = "--json-out PATH"
        parser.set_defaults(_json_path_legacy=True)


def rewrite_argv(argv: list[str], parser: argparse.ArgumentParser) -> list[str]:
    """Old spellings argparse cannot read by itself -> the new ones (with a deprecation line).

    ``edgesam bench report`` becomes the command ``bench-report`` (``bench`` takes a positional
    MODEL, which argparse cannot tell apart from a nested sub-command name).
    ``--json PATH`` (a file) on a command with ``--json-out`` becomes ``--json-out PATH``:
    recognised as ``--json=PATH``, or ``--json`` followed by a value ending in ``.json``.
    """
    if not argv:
        return argv
    if argv[0] == "bench":  # `edgesam bench report ...` is the command bench-report
        at = 3 if argv[1:2] == ["--results-dir"] else 1
        if argv[at : at + 1] == ["report"]:
            return ["bench-report", *argv[1:at], *argv[at + 1 :]]
    sub = _subparser(parser, argv[0])
    if sub is None or not sub.get_default("_json_path_legacy"):
        return argv
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        path = None
        if token.startswith("--json="):
            path = token.split("=", 1)[1]
        elif token == "--json" and i + 1 < len(argv) and argv[i + 1].lower().endswith(".json"):
            path = argv[i + 1]
            i += 1
        if path is not None:
            _warn(argv[0], "--json PATH", "--json-out PATH")
            out += ["--json-out", path]
        else:
            out.append(token)
        i += 1
    return out


def join_positionals(parser: argparse.ArgumentParser, args: argparse.Namespace, extra: list[str]) -> None:
    """``segment MODEL --point 1,2 IMAGE``: argparse reads MODEL as IMAGE and leaves IMAGE over.

    argparse fills a group of adjacent positionals at once, so an option between MODEL and the
    input splits them. When exactly one plain value is left over and MODEL is empty, the values
    shift into place: MODEL, then the input. Anything else is argparse's usual error (exit 2).
    """
    sub = _subparser(parser, getattr(args, "command", "") or "")
    dest = getattr(args, "_model_dest", None)
    if sub is not None and dest is not None and len(extra) == 1 and not extra[0].startswith("-"):
        others = [a.dest for a in sub._actions if not a.option_strings and a.dest != dest]
        if len(others) == 1 and getattr(args, dest) is None:
            setattr(args, dest, getattr(args, others[0]))
            setattr(args, others[0], extra[0])
            return
    parser.error(f"unrecognized arguments: {' '.join(extra)}")


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser | None:
    for action in parser._actions:  # argparse keeps sub-parsers in the choices of this action
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(name)
    return None


def _warn(command: str, old: str, new: str) -> None:
    print(f"edgesam {command}: warning: {old} is deprecated and will be removed in the next release; use {new}",
          file=sys.stderr)


def finish(args: argparse.Namespace) -> argparse.Namespace:
    """Move old spellings to the new names (one stderr line each), enforce required MODEL/OUT.

    Raises:
        ValueError: a value given both ways, or a required MODEL / ``-o`` missing.
    """
    command = getattr(args, "command", "") or ""
    for legacy_dest, dest, spelling, new, flag in getattr(args, "_legacy", None) or []:
        value = getattr(args, legacy_dest, None)
        if not value:
            continue
        _warn(command, spelling, new)
        current = getattr(args, dest, None)
        if flag:
            setattr(args, dest, True)
            continue
        if current not in (None, value) and current != getattr(args, f"_default_{dest}", None):
            raise ValueError(f"give {new} or {spelling}, not both")
        setattr(args, dest, value)
    dest = getattr(args, "_model_dest", None)
    if dest is not None and getattr(args, dest, None) is None:
        if getattr(args, "_model_default", None) is not None:
            setattr(args, dest, args._model_default)
        elif getattr(args, "_model_required", False):
            raise ValueError("give MODEL: a model name (see `edgesam models`), a checkpoint file or a bundle folder")
    _check_order(command, args)
    if getattr(args, "_out_required", False) and getattr(args, "out", None) is None:
        raise ValueError("give -o/--out OUT")
    threads = getattr(args, "threads", None)
    if threads is not None and threads < 1:
        raise ValueError(f"--threads must be >= 1, got {threads}")
    return args


def note_input(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Record the command's one input positional beside MODEL (``image``, ``video``) on ``args``
    for the order check in :func:`finish`."""
    sub = _subparser(parser, getattr(args, "command", "") or "")
    dest = getattr(args, "_model_dest", None)
    if sub is None or dest is None:
        return
    others = [a.dest for a in sub._actions if not a.option_strings and a.dest != dest]
    if len(others) == 1:
        args._input_dest = others[0]


# extensions of the images and videos an input positional takes (never a model)
_MEDIA = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".mp4", ".avi", ".mov", ".mkv", ".webm")


def _check_order(command: str, args: argparse.Namespace) -> None:
    """``edgesam segment scene.png demo_bundle ...``: the input given first and the model second.

    Raises:
        ValueError: MODEL is an image / video file and the input is a model (bundle folder,
            checkpoint file or model name), with the command line in the right order.
    """
    dest, name = getattr(args, "_model_dest", None), getattr(args, "_input_dest", None)
    model, given = (getattr(args, dest, None) if dest else None), (getattr(args, name, None) if name else None)
    if not isinstance(model, str) or not isinstance(given, str):
        return
    if not (Path(model).is_file() and Path(model).suffix.lower() in _MEDIA) or not _is_model(given):
        return
    raise ValueError(f"MODEL comes first: edgesam {command} MODEL {name.upper()} ... "  # type: ignore[union-attr]
                     f"(here: edgesam {command} {given} {model} ...)")


def _is_model(text: str) -> bool:
    """Whether ``text`` names a bundle folder, a checkpoint file or a known model name."""
    from edgesam.bundle.format import METADATA_FILE

    path = Path(text)
    if path.is_dir():
        return (path / METADATA_FILE).is_file()
    if path.is_file():
        return path.suffix.lower() in (".pth", ".pt", ".safetensors")
    from edgesam.bundle.catalogue import list_models

    return text in list_models()


def predictor_for(args: argparse.Namespace, **options: Any) -> Any:
    """The :class:`~edgesam.SamPredictor` for a command's MODEL and runtime options."""
    from edgesam.loading import load_predictor

    check = False if getattr(args, "no_precision_check", False) else None
    return load_predictor(args.model, backend=getattr(args, "backend", None), threads=getattr(args, "threads", None),
                          precision=getattr(args, "precision", None), device=getattr(args, "device", None),
                          check=check, **options)  # fmt: skip


class Output:
    """Where a command's lines go: ``info`` (progress, notes), ``notice`` (needed even with ``-q``)
    and ``result`` (the answer).

    ``-q``: no ``info``. ``--json``: ``info`` on stderr, and ``result`` prints its data as one
    JSON document on stdout instead of its text.
    """

    def __init__(self, args: argparse.Namespace) -> None:
        self.quiet = bool(getattr(args, "quiet", False))
        self.json = bool(getattr(args, "json", False))
        # the real stdout: edgesam.cli.main sends library prints to stderr while a --json command runs
        self.stdout = getattr(args, "_result_stream", None) or sys.stdout

    @contextlib.contextmanager
    def chatter(self) -> Iterator[None]:
        """Around library calls that print progress on stdout (ONNX Runtime's calibration prints
        "Collecting tensor data ...", "Finding optimal threshold ..."): dropped with ``-q``, shown
        otherwise (with ``--json`` on stderr: :func:`edgesam.cli.main` sends every print there)."""
        if self.quiet:
            with contextlib.redirect_stdout(io.StringIO()):
                yield
        else:
            yield

    def info(self, text: str) -> None:
        if not self.quiet:
            self.notice(text)

    def notice(self, text: str) -> None:
        """A line the user needs even with ``-q`` (e.g. the URL of a live view)."""
        print(text, file=sys.stderr if self.json else self.stdout, flush=True)

    def result(self, text: str, data: dict[str, Any]) -> None:
        if self.json:
            from edgesam.io import json_safe

            print(json.dumps(json_safe(data), default=str, sort_keys=True), file=self.stdout, flush=True)
        else:
            print(text, file=self.stdout, flush=True)


def grammar_table(parser: argparse.ArgumentParser) -> str:
    """The README's "Command-line grammar" table, rendered from the parsers."""
    rows = ["| command | MODEL | output (`-o/--out`) | other common options | deprecated spellings (one release) |",
            "| --- | --- | --- | --- | --- |"]  # fmt: skip
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        g = grammar_of(p)
        default = f" (default `{g.model_default}`)" if g.model_default else ""
        model = {"required": "required", "optional": f"optional{default}", "": "—"}[g.model]
        if g.model and g.model_note:
            model += f": {g.model_note}"
        out = g.out_when or {"required": "required", "optional": "optional", "": "—"}[g.out]
        if g.out:
            out += f": {g.out_note}"
        options = ", ".join(f"`{o}`" for o in g.options) or "—"
        old = ", ".join(f"`{k}` → `{v}`" for k, v in g.deprecated.items()) or "—"
        rows.append(f"| `{p.prog.replace('edgesam ', '', 1)}` | {model} | {out} | {options} | {old} |")
    return "\n".join(rows)
