"""Without torch (a runtime-only install), torch-only entry points say what to install.

Like ``test_runtimes_no_torch.py``: a subprocess makes ``torch`` unimportable, then calls
``edgesam.load_model``, ``edgesam.load_predictor`` and the CLI with the model ``edgesam-demo``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from torch_blocker import BLOCK_TORCH

REPO = Path(__file__).resolve().parents[1]

SCRIPT = BLOCK_TORCH + r"""
import io
from contextlib import redirect_stderr
import numpy as np
import edgesam
from edgesam.cli import main
from edgesam.io import write_image

try:
    edgesam.load_model("edgesam-demo")
except ImportError as exc:
    print("PY:", exc)
else:
    raise SystemExit("load_model worked without torch")

write_image(sys.argv[1] + "/img.png", np.zeros((32, 32, 3), np.uint8))
err = io.StringIO()
with redirect_stderr(err):
    code = main(["segment", "edgesam-demo", sys.argv[1] + "/img.png", "--point", "4,4",
                 "-o", sys.argv[1] + "/m.png"])
print("CLI:", code, err.getvalue().strip())
try:
    edgesam.load_predictor("edgesam-demo")
except ImportError as exc:
    print("FACTORY:", exc)
else:
    raise SystemExit("load_predictor worked without torch")
"""


def test_torch_entry_points_say_how_to_install_torch(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = dict(line.split(": ", 1) for line in proc.stdout.strip().splitlines())
    py, cli = lines["PY"], lines["CLI"]
    assert py.startswith("edgesam.load_model needs torch, which is not installed"), py
    assert "pip install torch==2.13.0 safetensors" in py and "load_predictor(BUNDLE_DIR)" in py
    assert cli.startswith("2 edgesam segment: error: checkpoint edgesam-demo needs torch"), cli
    assert "pip install torch==2.13.0" in cli and "edgesam COMMAND BUNDLE_DIR" in cli and "\n" not in cli
    assert lines["FACTORY"].startswith("checkpoint edgesam-demo needs torch, which is not installed"), lines["FACTORY"]
    assert not (tmp_path / "m.png").exists()
