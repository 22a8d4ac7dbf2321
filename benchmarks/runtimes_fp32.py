"""FP32 latency and parity of every installed runtime backend, side by side in one process.

Exports (or reuses, ``--bundle``) a bundle of the chosen architecture, opens it with each
backend -- torch, ONNX Runtime (CPU), OpenVINO forced to f32 and OpenVINO with its default
precision (bf16 on CPUs that support it) -- and then:

* latency: the encoder on one pre-processed image and the decoder for one click (``B = 1``,
  ``N = 2`` with the padding point) and for 16 boxes (``B = 16``, ``N = 2``); timed in-process
  with ``time.perf_counter``, round-robin across backends (so background load hits all of
  them alike), after warm-up; reported as p50 / p90 / mean in ms;
* parity vs torch: embedding relative error ``max|e - e_torch| / max|e_torch|`` and mean mask
  IoU of ``SamPredictor`` outputs (3 scenes x (1 click, multimask) + all boxes) against the
  torch predictor.

Weights are seeded random (no pretrained weights can be downloaded here): latency does not
depend on the values, and parity is a property of the runtimes.

    python benchmarks/runtimes_fp32.py --arch vit_t --image-size 1024 --rounds 5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(REPO))

from edgesam.bench.timing import TimingStats, measure  # noqa: E402


def _backends(bundle: Path, model: Any, threads: int | None) -> dict[str, Any]:
    from edgesam.runtimes import available_backends
    from edgesam.runtimes.loader import load_backend
    from edgesam.runtimes.torch_backend import TorchBackend

    have = available_backends()
    out: dict[str, Any] = {"torch": TorchBackend(model)}
    if have["onnxruntime"] is True:
        out["onnxruntime"] = load_backend(bundle, "onnxruntime", providers=["CPUExecutionProvider"],
                                          intra_op_threads=threads)  # fmt: skip
    if have["openvino"] is True:
        extra = {"INFERENCE_NUM_THREADS": threads} if threads else {}
        out["openvino-f32"] = load_backend(bundle, "openvino", precision="fp32", config=extra)
        default = load_backend(bundle, "openvino", config=extra)
        out[f"openvino-default({default.effective_precision})"] = default
    return out


def _scenes(n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from edgesam.scenes import SceneConfig, generate_scene

    out = []
    for seed in range(n):
        sc = generate_scene(100 + seed, SceneConfig(height=480, width=640, min_objects=3, max_objects=6))
        out.append((sc.image, sc.boxes))
    return out


def _parity(backends: dict[str, Any], scenes: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, dict[str, float]]:
    from edgesam.metrics import mask_iou
    from edgesam.predictor import SamPredictor

    ref = SamPredictor(backends["torch"])
    result: dict[str, dict[str, float]] = {}
    for name, backend in backends.items():
        ours, ious, errs = SamPredictor(backend), [], []
        for image, boxes in scenes:
            ours.set_image(image)
            ref.set_image(image)
            e, e_ref = ours.get_image_embedding(), ref.get_image_embedding()
            errs.append(float(np.abs(e - e_ref).max() / np.abs(e_ref).max()))
            click = ((boxes[:1, :2] + boxes[:1, 2:]) / 2).astype(np.float32)
            pairs = [
                (ours.predict(point_coords=click, point_labels=np.array([1]))[0],
                 ref.predict(point_coords=click, point_labels=np.array([1]))[0]),
                (ours.predict_batch(boxes=boxes)[0], ref.predict_batch(boxes=boxes)[0]),
            ]  # fmt: skip
            for a, b in pairs:
                ious.extend(mask_iou(a, b).reshape(-1).tolist())
        result[name] = {"embedding_rel_error": max(errs), "mean_mask_iou": float(np.mean(ious)),
                        "min_mask_iou": float(np.min(ious)), "masks": len(ious)}  # fmt: skip
    return result


def _cases(backend: Any, image: np.ndarray, boxes: np.ndarray) -> dict[str, Callable[[], object]]:
    from edgesam.predictor import SamPredictor

    from edgesam.bench.cases import model_input

    p = SamPredictor(backend)
    p.set_image(image)
    s = backend.image_size
    x = model_input(backend, image)
    embed = p.get_image_embedding()
    grid = embed.shape[-1]

    def decoder_args(b: int) -> tuple[np.ndarray, ...]:
        rng = np.random.default_rng(b)
        coords = rng.uniform(0, s * 0.6, (b, 2, 2)).astype(np.float32)
        labels = np.tile(np.array([[1.0, -1.0]] if b == 1 else [[2.0, 3.0]], np.float32), (b, 1))
        return coords, labels, np.zeros((b, 1, 4 * grid, 4 * grid), np.float32), np.zeros(b, np.float32)

    one, many = decoder_args(1), decoder_args(16)
    return {
        "encoder": lambda: backend.encode(x),
        "decoder_1click": lambda: backend.decode(embed, *one),
        "decoder_16boxes": lambda: backend.decode(embed, *many),
    }


def _stats(samples: list[float]) -> dict[str, float]:
    st = TimingStats.from_samples(samples)
    return {"p50_ms": st.p50_ms, "p90_ms": st.p90_ms, "mean_ms": st.mean_ms, "n": st.n}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="vit_t")
    parser.add_argument("--image-size", type=int, default=1024)
    parser.add_argument("--bundle", type=Path, help="existing bundle (else exported to a temp folder)")
    parser.add_argument("--rounds", type=int, default=5, help="round-robin rounds")
    parser.add_argument("--encoder-runs", type=int, default=2, help="timed encoder calls per round")
    parser.add_argument("--decoder-runs", type=int, default=10, help="timed decoder calls per round")
    parser.add_argument("--parity-scenes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="threads per runtime (default: runtime's)")
    parser.add_argument("--json", type=Path, help="write results here")
    args = parser.parse_args(argv)

    import torch

    from edgesam.bench.device import device_fingerprint
    from edgesam.export import export_bundle
    from edgesam.models import build_sam

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_sam(args.arch, image_size=args.image_size)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = args.bundle or export_bundle(model, Path(tmp) / "bundle")
        backends = _backends(bundle, model, args.threads)
        scenes = _scenes(args.parity_scenes)
        parity = _parity(backends, scenes)
        cases = {name: _cases(b, *scenes[0]) for name, b in backends.items()}
        samples: dict[str, dict[str, list[float]]] = {n: {c: [] for c in cs} for n, cs in cases.items()}
        for r in range(args.rounds):
            for name, case_fns in cases.items():
                for case, fn in case_fns.items():
                    runs = args.encoder_runs if case == "encoder" else args.decoder_runs
                    st = measure(fn, warmup=2 if r == 0 else 0, min_runs=runs, max_runs=runs, min_seconds=0.0)
                    samples[name][case].extend(st.samples_ms)
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    latency = {n: {c: _stats(v) for c, v in cs.items()} for n, cs in samples.items()}
    fp = device_fingerprint()
    report = {"arch": args.arch, "image_size": args.image_size, "threads": args.threads,
              "cpu": fp.get("cpu"), "packages": fp.get("packages"), "latency": latency, "parity": parity}  # fmt: skip
    print(f"\n{args.arch} @ {args.image_size}, fp32 weights, threads={args.threads or 'runtime default'}")
    print("| backend | encoder p50 / p90 ms | decoder 1 click p50 ms | decoder 16 boxes p50 ms | "
          "embedding rel. err | mean mask IoU (min) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name in backends:
        lat, par = latency[name], parity[name]
        enc, one, many = lat["encoder"], lat["decoder_1click"], lat["decoder_16boxes"]
        print(f"| {name} | {enc['p50_ms']:.1f} / {enc['p90_ms']:.1f} | {one['p50_ms']:.2f} | {many['p50_ms']:.1f} | "
              f"{par['embedding_rel_error']:.1e} | {par['mean_mask_iou']:.4f} ({par['min_mask_iou']:.4f}) |")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
