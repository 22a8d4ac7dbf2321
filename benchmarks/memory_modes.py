"""RSS and latency of each backend x bundle x memory mode, measured side by side in one run.

For every bundle given (``--bundle LABEL=PATH``, e.g. ``fp32=...`` and ``int8=...``; an INT8
bundle runs only on the runtimes it was quantized for) and every backend x memory mode
(``edgesam.runtimes.memory.MEMORY_MODES``), one fresh runtime-only process
(:func:`edgesam.bench.memory.measure_rss`) runs ``--calls`` rounds of ``set_image`` on a new
``H x W`` image + one click (+ a batch of ``--boxes`` boxes) and reports baseline / steady /
peak RSS and the median ``set_image`` and ``predict`` times. ``--rounds`` repeats the whole grid round-robin, so
background load hits every variant alike; the table keeps each variant's lowest latency and
highest RSS over the rounds, and gives the latency ratio against the ``runtime`` mode (the
runtimes' own allocator defaults, i.e. edgesam before memory modes) of the same bundle and
backend.

    python benchmarks/memory_modes.py --bundle fp32=b/fp32 --bundle int8-ort=b/int8_ort \\
        --bundle int8-ov=b/int8_ov --backends onnxruntime,openvino --calls 8 --rounds 2 \\
        --threads 2 --json memory.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

from edgesam.bench.memory import measure_rss  # noqa: E402
from edgesam.bundle import METADATA_FILE  # noqa: E402
from edgesam.runtimes.memory import MEMORY_MODES  # noqa: E402


def _runs_on(bundle: Path) -> list[str] | None:
    meta = json.loads((bundle / METADATA_FILE).read_text())
    return (meta.get("quantization") or {}).get("runs_on")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", action="append", required=True, metavar="LABEL=PATH")
    p.add_argument("--backends", default="onnxruntime,openvino")
    p.add_argument("--modes", default=",".join(MEMORY_MODES))
    p.add_argument("--calls", type=int, default=8)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--boxes", type=int, default=0, help="also decode a batch of this many boxes per round")
    p.add_argument("--height", type=int, default=768)
    p.add_argument("--width", type=int, default=1024)
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    grid: list[tuple[str, Path, str, str]] = []
    for item in args.bundle:
        label, _, path = item.partition("=")
        bundle = Path(path)
        allowed = _runs_on(bundle)
        for backend in args.backends.split(","):
            if allowed and backend not in allowed:
                continue
            grid += [(label, bundle, backend, mode) for mode in args.modes.split(",")]
    best: dict[tuple[str, str, str], dict[str, Any]] = {}
    loads: list[float] = []
    for r in range(args.rounds):
        for label, bundle, backend, mode in grid:
            loads.append(os.getloadavg()[0])
            fig = measure_rss(bundle, backend=backend, options={"memory": mode},
                              image_size=(args.height, args.width), calls=args.calls,
                              threads=args.threads, boxes=args.boxes).to_dict()
            print(f"round {r + 1} {label:>10} {backend:>11} {mode:>7}: steady {fig['steady_mb']:.0f} MB, "
                  f"peak {fig['peak_mb']:.0f} MB, set_image {fig['set_image_ms']:.0f} ms", flush=True)
            key = (label, backend, mode)
            old = best.get(key)
            if old is None:
                best[key] = fig
            else:
                for k in ("steady_mb", "peak_mb", "baseline_mb", "loaded_mb"):
                    old[k] = max(old[k], fig[k])
                for k in ("set_image_ms", "predict_ms"):
                    old[k] = min(old[k], fig[k])
    print(f"\nload average (1 min) while measuring: {min(loads):.1f} .. {max(loads):.1f} "
          f"on {os.cpu_count()} CPUs; {args.calls} calls, {args.rounds} round(s), "
          f"{args.height}x{args.width} images, {args.boxes} boxes per round\n")
    print("| bundle | backend | memory | baseline MB | steady MB | peak MB | set_image ms | predict ms "
          "| set_image vs runtime |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = []
    for (label, backend, mode), fig in best.items():
        ref = best.get((label, backend, "runtime"))
        ratio = fig["set_image_ms"] / ref["set_image_ms"] if ref else float("nan")
        print(f"| {label} | {backend} | {mode} | {fig['baseline_mb']:.0f} | {fig['steady_mb']:.0f} | "
              f"{fig['peak_mb']:.0f} | {fig['set_image_ms']:.0f} | {fig['predict_ms']:.1f} | {ratio:.2f}x |")
        rows.append({"bundle": label, "backend": backend, "memory": mode, **fig, "set_image_ratio": ratio})
    if args.json is not None:
        args.json.write_text(json.dumps({"load_avg_1m": [min(loads), max(loads)], "boxes": args.boxes, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
