"""The full-size distillation run: a ViT-H teacher, the vit_t and edge_sam students, photos at 1024 px.

Writes a seeded official-layout ``vit_h`` checkpoint (random weights: no SAM weights can be
downloaded here) and ``--photos`` photos from ``skimage.data`` at their natural sizes, then runs
``edgesam distill`` once per student under ``/usr/bin/time -v`` with one shared ``--cache-dir``:
the first run computes the teacher cache, the second reuses it. Records wall time, peak RSS and
each run's JSON summary in ``--out/full_run.json`` and prints them.

    nice -n 10 python benchmarks/distill_full_run.py --work /tmp/distill-full --photos 6 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "retina", "immunohistochemistry",
          "cat", "coins", "camera", "moon", "page")


def write_photos(folder: Path, names: list[str]) -> list[tuple[str, tuple[int, ...]]]:
    import cv2
    import numpy as np
    import skimage.data

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names:
        img = np.asarray(getattr(skimage.data, name)())
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, 2)
        img = img[:, :, :3]
        cv2.imwrite(str(folder / f"{name}.jpg"), np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 92])
        out.append((name, img.shape))
    return out


def write_teacher(path: Path, arch: str, seed: int) -> None:
    if path.is_file():
        return
    import torch

    from edgesam.distillation.pipeline import save_sam
    from edgesam.models.registry import build_sam

    torch.manual_seed(seed)
    save_sam(build_sam(arch), path)  # the official state-dict layout (.pth)


def timed_run(argv: list[str], env: dict) -> dict:
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "edgesam", *argv]
    t0 = time.time()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.time() - t0
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    summary = None
    try:
        summary = json.loads(done.stdout[done.stdout.index("{"):])
    except ValueError:
        pass
    return {"command": "edgesam " + " ".join(argv), "returncode": done.returncode, "wall_s": round(wall, 1),
            "peak_rss_gb": round(int(rss.group(1)) / 1024 ** 2, 2) if rss else None, "summary": summary,
            "stderr_tail": None if done.returncode == 0 else done.stderr[-1500:]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--work", default="/tmp/distill-full", help="checkpoint, photos, cache and runs go here")
    p.add_argument("--teacher-arch", default="vit_h")
    p.add_argument("--students", default="vit_t,edge_sam")
    p.add_argument("--photos", type=int, default=6)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--phase1-steps", type=int, default=4)
    p.add_argument("--phase2-steps", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--teacher-precision", default="fp32", help="fp32 (as in the README's run), bf16 or auto")
    args = p.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ckpt = work / f"sam_{args.teacher_arch}_seeded.pth"
    t0 = time.time()
    write_teacher(ckpt, args.teacher_arch, 0)
    photos = write_photos(work / "photos", list(PHOTOS[: args.photos]))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": str(args.threads)}
    load = os.getloadavg()
    runs = []
    for student in args.students.split(","):
        argv = ["distill", "--teacher", str(ckpt), "--teacher-arch", args.teacher_arch, "--student-arch", student,
                "--images", str(work / "photos"), "--out", str(work / f"run-{student}"),
                "--cache-dir", str(work / "cache"), "--threads", str(args.threads), "--batch-size",
                str(args.batch_size), "--phase1-steps", str(args.phase1_steps), "--phase2-steps",
                str(args.phase2_steps), "--max-prompts", "4", "-q",
                "--teacher-precision", args.teacher_precision]
        runs.append(timed_run(argv, env))
        print(json.dumps(runs[-1], indent=1), flush=True)
    result = {"teacher": args.teacher_arch, "photos": [[n, list(s)] for n, s in photos], "threads": args.threads,
              "loadavg_before": [round(x, 2) for x in load], "loadavg_after": [round(x, 2) for x in os.getloadavg()],
              "runs": runs, "total_s": round(time.time() - t0, 1)}
    (work / "full_run.json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=1))
    return 0 if all(r["returncode"] == 0 for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
