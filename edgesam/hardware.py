"""Describe the machine a benchmark runs on.

`device_fingerprint()` collects what decides inference speed (CPU model, usable cores, ISA
extensions, RAM, GPU, Jetson power mode) and what decides the numbers' meaning (OS, Python,
runtime package versions, edgesam version, git commit). It reads files and runs small
commands with timeouts; it never imports the runtimes it reports on.

`device_id(fp)` turns a fingerprint into a short, stable, filesystem-safe slug used to name
result files, e.g. ``amd-epyc-zen5-2c`` or ``intel-core-i7-1165g7-8c-nvidia-geforce-rtx-3060``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["FINGERPRINT_KEYS", "ISA_FLAGS", "device_fingerprint", "device_id", "hardware_fingerprint",
           "parse_cpuinfo", "parse_nvidia_smi_csv"]

#: Top-level keys of every fingerprint.
FINGERPRINT_KEYS: tuple[str, ...] = (
    "schema", "cpu", "ram_total_mb", "gpus", "cuda_version", "jetson", "os", "machine",
    "python", "packages", "edgesam_version", "git_commit", "git_dirty", "thread_env",
)

#: CPU feature flags worth reporting (Linux /proc/cpuinfo spelling; x86 then arm).
ISA_FLAGS: tuple[str, ...] = (
    "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
    "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8",
    "neon", "asimd", "asimddp", "asimdhp", "fphp", "i8mm", "bf16", "sve", "sve2",
)

# Output-name -> candidate distribution names (first installed one wins).
_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy",),
    "opencv": ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless"),
    "onnx": ("onnx",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml",
                    "onnxruntime-qnn"),
    "openvino": ("openvino",), "torch": ("torch",),
    "tensorrt": ("tensorrt", "tensorrt-cu13", "tensorrt-cu12", "tensorrt-cu11"), "nncf": ("nncf",),
}
# Output-name -> import name, used only when no distribution metadata exists (e.g. apt installs).
_MODULES: dict[str, str] = {"opencv": "cv2"}

_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
               "ORT_NUM_THREADS", "OV_CPU_THREADS_NUM", "CUDA_VISIBLE_DEVICES")

_SLUG_MAX = 96


# --------------------------------------------------------------------------- low-level helpers


def _read_text(path: str | Path) -> str | None:
    """Return a file's text, or None when it cannot be read."""
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return None


def _run(cmd: list[str], timeout: float = 5.0, cwd: Path | None = None) -> str | None:
    """Run a command; return stripped stdout on success, None on any failure or timeout."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def parse_cpuinfo(text: str) -> list[dict[str, str]]:
    """Split /proc/cpuinfo text into blank-line separated blocks of ``key: value`` pairs."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current[key.strip()] = value.strip()
    if current:
        blocks.append(current)
    return blocks


def _first(blocks: list[dict[str, str]], key: str) -> str | None:
    return next((block[key] for block in blocks if block.get(key)), None)


# --------------------------------------------------------------------------- CPU


def _amd_microarch(family: int, model: int) -> str | None:
    """Zen generation from AMD family/model numbers (None when unknown)."""
    if family == 0x17:
        return "zen2" if model >= 0x30 else "zen"
    if family == 0x19:
        zen4 = 0x10 <= model <= 0x1F or 0x60 <= model <= 0x7F or 0xA0 <= model <= 0xAF
        return "zen4" if zen4 else "zen3"
    if family == 0x1A:
        return "zen5"
    return None


def _sysctl(name: str) -> str | None:
    return _run(["sysctl", "-n", name]) if sys.platform == "darwin" else None


def _cpu_model(blocks: list[dict[str, str]]) -> str:
    model = _first(blocks, "model name") or _sysctl("machdep.cpu.brand_string")
    if not model or re.match(r"ARMv\d", model):  # generic arm string: lscpu knows the core
        generic = model
        lscpu = _run(["lscpu"])
        match = re.search(r"^Model name:\s*(.+)$", lscpu or "", re.MULTILINE)
        model = match.group(1).strip() if match else generic
    return model or _first(blocks, "Hardware") or platform.processor() or platform.machine()


def _physical_cores(blocks: list[dict[str, str]]) -> int | None:
    """Distinct (package, core) pairs from sysfs topology, else /proc/cpuinfo."""
    pairs: set[tuple[str, str]] = set()
    for topo in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology"):
        core, pkg = _read_text(topo / "core_id"), _read_text(topo / "physical_package_id")
        if core is not None and pkg is not None:
            pairs.add((pkg.strip(), core.strip()))
    if not pairs:
        pairs = {(b["physical id"], b["core id"]) for b in blocks
                 if "physical id" in b and "core id" in b}
    if pairs:
        return len(pairs)
    mac = _sysctl("hw.physicalcpu")
    return int(mac) if mac and mac.isdigit() else None


def _cpu_quota() -> float | None:
    """CPUs granted by the cgroup CPU quota (v2 cpu.max or v1 cfs), None when unlimited."""
    text = _read_text("/sys/fs/cgroup/cpu.max")  # v2: "max 100000" or "200000 100000"
    if text and len(text.split()) == 2:
        quota, period = text.split()
    else:
        quota, period = (_read_text(f"/sys/fs/cgroup/cpu/cpu.cfs_{k}_us") or "" for k in ("quota", "period"))
    quota, period = quota.strip(), period.strip()
    return int(quota) / int(period) if quota.isdigit() and period.isdigit() and int(period) > 0 else None


def _usable_cpus(logical: int, quota: float | None) -> int:
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = logical
    if quota is not None:
        usable = min(usable, max(1, math.ceil(quota)))
    return usable


def _isa(blocks: list[dict[str, str]]) -> list[str]:
    """Interesting ISA flags present on CPU 0 (Linux flags/Features, macOS hw.optional)."""
    raw = set((_first(blocks, "flags") or _first(blocks, "Features") or "").split())
    if sys.platform == "darwin":
        text = _run(["sysctl", "hw.optional"]) or ""
        feats = dict(re.findall(r"hw\.optional\.(?:arm\.)?(\w+):\s*(\d+)", text))
        mac_map = {"neon": "asimd", "FEAT_DotProd": "asimddp", "FEAT_FP16": "fphp",
                   "FEAT_I8MM": "i8mm", "FEAT_BF16": "bf16", "avx2_0": "avx2",
                   "avx512f": "avx512f"}
        raw |= {flag for key, flag in mac_map.items() if feats.get(key) == "1"}
    return [flag for flag in ISA_FLAGS if flag in raw]


def _cpu_info() -> dict[str, Any]:
    blocks = parse_cpuinfo(_read_text("/proc/cpuinfo") or "")
    vendor = _first(blocks, "vendor_id")
    family, model = _first(blocks, "cpu family") or "", _first(blocks, "model") or ""
    amd = vendor == "AuthenticAMD" and family.isdigit() and model.isdigit()
    microarch = _amd_microarch(int(family), int(model)) if amd else None
    logical = os.cpu_count() or 1
    quota = _cpu_quota()
    governor = _read_text("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    return {"model": _cpu_model(blocks), "vendor": vendor or _first(blocks, "CPU implementer"),
            "microarch": microarch, "physical_cores": _physical_cores(blocks) or logical, "logical_cpus": logical,
            "usable_cpus": _usable_cpus(logical, quota), "cpu_quota": quota, "isa": _isa(blocks),
            "governor": governor.strip() if governor else None}


def _ram_total_mb() -> float | None:
    meminfo = _read_text("/proc/meminfo") or ""
    match = re.search(r"^MemTotal:\s*(\d+)\s*kB", meminfo, re.MULTILINE)
    if match:
        return round(int(match.group(1)) / 1024.0, 1)
    mac = _sysctl("hw.memsize")
    if mac and mac.isdigit():
        return round(int(mac) / 2**20, 1)
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20, 1)
    except (ValueError, OSError, AttributeError):
        return None


# --------------------------------------------------------------------------- GPU / Jetson


def parse_nvidia_smi_csv(text: str) -> list[dict[str, str]]:
    """Parse ``nvidia-smi --query-gpu=name,driver_version --format=csv,noheader`` output."""
    rows = ([p.strip() for p in line.split(",")] for line in text.splitlines())
    return [{"name": r[0], "driver_version": r[1]} for r in rows if len(r) >= 2 and r[0]]


def _gpus() -> tuple[list[dict[str, str]], str | None]:
    """NVIDIA GPUs and the driver's CUDA version via nvidia-smi ([] and None when absent)."""
    out = _run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
               timeout=10.0)
    if not out:
        return [], None
    header = _run(["nvidia-smi"], timeout=10.0) or ""
    match = re.search(r"CUDA Version:\s*([\d.]+)", header)
    return parse_nvidia_smi_csv(out), match.group(1) if match else None


def _jetson() -> dict[str, str | None] | None:
    """Jetson board model, nvpmodel power mode and L4T release (None off Jetson)."""
    model = (_read_text("/proc/device-tree/model") or "").replace("\x00", "").strip()
    release = _read_text("/etc/nv_tegra_release")
    if "jetson" not in model.lower() and release is None:
        return None
    power = _run(["nvpmodel", "-q"])
    match = re.search(r"Power Mode:\s*(\S+)", power or "")
    l4t = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", release or "")
    return {"model": model or None, "power_mode": match.group(1) if match else None,
            "l4t": f"{l4t.group(1)}.{l4t.group(2)}" if l4t else None}


# --------------------------------------------------------------------------- software


def _package_versions() -> dict[str, str | None]:
    """Installed versions from distribution metadata; nothing is imported.

    A version from a variant distribution is suffixed with it, e.g. ``"1.18.0 (onnxruntime-gpu)"``;
    a module present without metadata reports ``"unknown"``; an absent one reports None.
    """
    versions: dict[str, str | None] = {}
    for name, dists in _DISTRIBUTIONS.items():
        versions[name] = None
        for dist in dists:
            try:
                version = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
            versions[name] = version if dist == name else f"{version} ({dist})"
            break
        if versions[name] is None and importlib.util.find_spec(_MODULES.get(name, name)):
            versions[name] = "unknown"
    return versions


def _edgesam_version() -> str | None:
    module = sys.modules.get("edgesam")
    version = getattr(module, "__version__", None)
    if isinstance(version, str):
        return version
    try:
        return importlib.metadata.version("edgesam")
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_info() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout holding this package; (None, None) outside one."""
    root = Path(__file__).resolve().parents[1]
    top = _run(["git", "rev-parse", "--show-toplevel"], cwd=root)
    if top is None or Path(top).resolve() != root:
        return None, None
    commit = _run(["git", "rev-parse", "HEAD"], cwd=root)
    if commit is None:
        return None, None
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root)
    return commit, (bool(status) if status is not None else None)


# --------------------------------------------------------------------------- public API


def device_fingerprint() -> dict[str, Any]:
    """Describe this machine and software stack as a JSON-serialisable dict.

    Keys are `FINGERPRINT_KEYS`: ``cpu`` (model, vendor, microarch, physical_cores,
    logical_cpus, usable_cpus, cpu_quota, isa, governor), ``ram_total_mb``, ``gpus`` (list of
    {name, driver_version}), ``cuda_version``, ``jetson`` ({model, power_mode, l4t} or None),
    ``os``, ``machine``, ``python``, ``packages`` (name -> version or None), ``edgesam_version``,
    ``git_commit``, ``git_dirty``, ``thread_env`` (thread-count environment variables set).
    Missing tools (nvidia-smi, nvpmodel, lscpu, git) give None/[] rather than an error.
    """
    gpus, cuda = _gpus()
    commit, dirty = _git_info()
    return {"schema": 1, "cpu": _cpu_info(), "ram_total_mb": _ram_total_mb(), "gpus": gpus, "cuda_version": cuda,
            "jetson": _jetson(), "os": platform.platform(), "machine": platform.machine(),
            "python": platform.python_version(), "packages": _package_versions(),
            "edgesam_version": _edgesam_version(), "git_commit": commit, "git_dirty": dirty,
            "thread_env": {k: os.environ[k] for k in _THREAD_ENV if k in os.environ}}


def hardware_fingerprint() -> dict[str, Any]:
    """The hardware part of :func:`device_fingerprint` (``cpu``, ``gpus``, ``jetson``): enough
    for :func:`device_id`, without the software probes (git, package metadata)."""
    return {"cpu": _cpu_info(), "gpus": _gpus()[0], "jetson": _jetson()}


_NOISE = re.compile(
    r"\((?:r|tm|c)\)|\b(?:cpu|processor|with radeon graphics|\d+-core|"
    r"developer kit|module)\b|@\s*[\d.]+\s*[gm]hz",
    re.IGNORECASE,
)


def _slug(text: str) -> str:
    text = _NOISE.sub(" ", text).lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def device_id(fp: dict[str, Any]) -> str:
    """Short filesystem-safe slug naming the hardware of fingerprint `fp`.

    Built from the CPU model (plus AMD Zen generation when known), the usable CPU count
    (``<n>c``), the first GPU's name (``x<k>`` when several) and, on Jetson, the board and
    power mode. Software versions do not enter it, so it stays the same across upgrades.
    Only ``[a-z0-9-]``, at most 96 characters, never empty.
    """
    cpu = fp.get("cpu") or {}
    parts: list[str] = []
    jetson = fp.get("jetson")
    if jetson:
        parts += [_slug(jetson.get("model") or "jetson"), _slug(jetson.get("power_mode") or "")]
    model = _slug(str(cpu.get("model") or "cpu"))
    microarch = cpu.get("microarch")
    if microarch and microarch not in model:
        model = f"{model}-{_slug(microarch)}"
    cores = cpu.get("usable_cpus") or cpu.get("logical_cpus")
    parts += [model, f"{cores}c" if cores else ""]
    gpus = fp.get("gpus") or []
    if gpus and not jetson:
        gpu = _slug(str(gpus[0].get("name", "gpu")))
        parts.append(gpu + (f"-x{len(gpus)}" if len(gpus) > 1 else ""))
    slug = re.sub(r"-+", "-", "-".join(p for p in parts if p)).strip("-")
    return slug[:_SLUG_MAX].rstrip("-") or "unknown-device"
