#!/usr/bin/env bash
# Runtime-only install check: a fresh virtualenv with `pip install ".[onnxruntime]"` (no torch)
# runs an exported bundle end to end through SamPredictor and matches its golden reference.
#
# Usage: .ci/no_torch_check.sh [BUNDLE_DIR]
#   BUNDLE_DIR  a bundle exported earlier in CI; without it, one is exported here first with
#               the current python (which needs torch: CI's main virtualenv).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/edgesam-notorch.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

BUNDLE="${1:-}"
if [ -z "$BUNDLE" ]; then
    BUNDLE="$WORK/bundle"
    echo "no-torch check: exporting a vit_t 256-px bundle to $BUNDLE"
    python3 - "$BUNDLE" <<'PY'
import sys

import torch

from edgesam.export import export_bundle
from edgesam.models import build_sam

torch.manual_seed(0)
export_bundle(build_sam("vit_t", image_size=256), sys.argv[1])
PY
fi
BUNDLE="$(cd "$BUNDLE" && pwd)"

echo "no-torch check: fresh virtualenv, the README's runtime-only install from the checkout"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet --upgrade pip
(cd "$REPO" && "$WORK/venv/bin/pip" install --quiet ".[onnxruntime]")

# Run from an empty folder so the installed package (not the source tree) is imported.
cd "$WORK"
"$WORK/venv/bin/python" - "$BUNDLE" <<'PY'
import importlib.util
import sys

import numpy as np

assert importlib.util.find_spec("torch") is None, "torch is installed in the runtime-only virtualenv"

import edgesam
from edgesam import SamPredictor
from edgesam.runtimes.golden import check_golden

assert "site-packages" in edgesam.__file__, edgesam.__file__
predictor = SamPredictor.from_bundle(sys.argv[1], backend="onnxruntime")
image = np.zeros((300, 400, 3), np.uint8)
image[80:220, 120:300] = (30, 200, 90)
predictor.set_image(image)
masks, scores, _ = predictor.predict(point_coords=np.array([[210, 150]]), point_labels=np.array([1]))
assert masks.shape == (3, 300, 400) and scores.shape == (3,)
masks, scores, _ = predictor.predict_batch(boxes=np.array([[120, 80, 299, 219], [10, 10, 60, 60]]), multimask_output=False)
assert masks.shape == (2, 1, 300, 400)
result = check_golden(predictor.backend, min_mask_iou=0.995)
leaked = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
assert not leaked, leaked
print(f"no-torch check: OK (edgesam {edgesam.__version__}, golden mask IoU {result.mask_iou:.4f}, "
      f"embedding rel. error {result.embedding_rel_error:.2e})")
PY

# The command line too: a bundle runs, a checkpoint says that torch is needed.
"$WORK/venv/bin/python" -c "import numpy as np, cv2; cv2.imwrite('img.png', np.full((120, 160, 3), 90, np.uint8))"
"$WORK/venv/bin/edgesam" segment "$BUNDLE" img.png --point 80,60 -o mask.png --overlay overlay.png
test -s mask.png && test -s overlay.png
"$WORK/venv/bin/python" -c "import edgesam, sys; edgesam.load_predictor(sys.argv[1], threads=1); \
assert not any(m == 'torch' or m.startswith('torch.') for m in sys.modules)" "$BUNDLE"
if "$WORK/venv/bin/edgesam" segment edgesam-demo img.png --point 80,60 -o m.png 2>err.txt; then
    echo "no-torch check: a checkpoint worked without torch" >&2; exit 1
fi
grep -q "needs torch" err.txt
echo "no-torch check: CLI OK"
