"""Run the edgesam benchmark suite from a checkout: ``python benchmarks/run.py [options]``.

Same options as ``edgesam bench`` (see ``python benchmarks/run.py --help``); rows go to
``benchmarks/results/<device-id>.jsonl`` unless ``-o/--out`` says otherwise, and
``python benchmarks/run.py report`` renders ``benchmarks/report/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    """``edgesam bench`` with results in this checkout's ``benchmarks/results``."""
    from edgesam.cli import main as cli_main

    args = list(sys.argv[1:] if argv is None else argv)
    results = REPO / "benchmarks" / "results"
    if args[:1] == ["report"]:
        rest = args[1:]
        if "--results-dir" not in rest:
            rest = ["--results-dir", str(results)] + rest
        if "--out" not in rest and "-o" not in rest:
            rest += ["--out", str(REPO / "benchmarks" / "report")]
        return cli_main(["bench", "report", *rest])
    if not {"-o", "--out", "--results-dir"} & set(args):
        args += ["--out", str(results)]
    return cli_main(["bench", *args])


if __name__ == "__main__":
    sys.exit(main())
