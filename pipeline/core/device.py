"""Device and precision choice.

`device: auto` = CUDA, then MPS, then CPU, except that an NVIDIA GPU which the driver reports but
torch cannot use stops the stage with one line (never a silent CPU fallback). `precision: auto` =
bf16 autocast where the GPU computes bf16 natively (compute capability 8 and newer: Ampere on), fp16 autocast with a
GradScaler on older CUDA GPUs (Turing), fp32 elsewhere. `deterministic` chooses between
bit-repeatable kernels and cuDNN's fastest ones.
"""
from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.core.errors import DeviceError

NVIDIA_PROC = Path("/proc/driver/nvidia/version")       # the kernel module's version, when it is loaded
BACKEND_FIX = "make env TORCH_BACKEND=cu126"            # the lock's versions, a torch build for CUDA 12.6


@dataclass(frozen=True)
class NvidiaGpu:
    """A GPU as the NVIDIA driver reports it (nvidia-smi), whether or not torch can use it."""
    name: str
    driver: str                 # e.g. 535.104.05; "" when unknown
    memory_mb: int = 0
    capability: str = ""        # e.g. 8.0; "" when the driver is too old to say


def nvidia_gpus() -> list[NvidiaGpu]:
    """Every NVIDIA GPU the driver reports: nvidia-smi's list, else one unnamed GPU when the kernel
    module is loaded (/proc/driver/nvidia/version) but nvidia-smi is missing or fails; [] without."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total,compute_cap",
                                  "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=20)
            rows = [[c.strip() for c in line.split(",")] for line in out.stdout.splitlines() if line.strip()]
            if out.returncode == 0 and rows:
                return [NvidiaGpu(r[0], r[1] if len(r) > 1 else "", _int(r[2]) if len(r) > 2 else 0,
                                  r[3] if len(r) > 3 and re.fullmatch(r"\d+\.\d+", r[3]) else "") for r in rows]
        except (OSError, subprocess.SubprocessError):
            pass
    if NVIDIA_PROC.exists():
        found = re.search(r"Kernel Module\s+(?:for \S+\s+)?(\d[\d.]*)", NVIDIA_PROC.read_text(errors="replace"))
        return [NvidiaGpu("an NVIDIA GPU (nvidia-smi did not answer)", found.group(1) if found else "")]
    return []


def _int(text: str) -> int:
    try:
        return int(float(text))
    except ValueError:
        return 0


def driver_needed(cuda: str) -> int:
    """The oldest NVIDIA driver branch a torch build for CUDA `cuda` runs on (CUDA's minor-version
    compatibility: 13.x needs 580, 12.x 525, 11.x 450)."""
    return {13: 580, 12: 525, 11: 450}.get(int(cuda.split(".")[0]), 580)


def arch_supported(capability: tuple[int, int], arch_list: list[str]) -> bool:
    """Whether a torch build with kernels for `arch_list` (torch.cuda.get_arch_list()) runs on a GPU of
    `capability`: a cubin of the same major and an equal or lower minor, or PTX of a lower arch."""
    major, minor = capability
    for arch in arch_list:
        found = re.fullmatch(r"(sm|compute)_(\d+?)(\d)([af]?)", arch)
        if not found:
            continue
        kind, a_major, a_minor, special = found.group(1), int(found.group(2)), int(found.group(3)), found.group(4)
        if kind == "sm" and special and (a_major, a_minor) == (major, minor):
            return True                 # sm_90a and the like: that exact capability only
        if kind == "sm" and not special and a_major == major and a_minor <= minor:
            return True
        if kind == "compute" and (a_major, a_minor) <= (major, minor):
            return True
    return False


def unusable_gpu(gpus: list[NvidiaGpu], cuda_build: str | None, torch_sees: int, torch_version: str,
                 arch_list: list[str] | None = None, capabilities: list[tuple[int, int]] | None = None) -> str:
    """Why torch cannot use the NVIDIA GPU(s) here, naming the GPU, the driver, torch's CUDA build and
    the fix; "" when it can (or there is no GPU). A pure function of what the machine reports."""
    if not gpus:
        return ""
    gpu = gpus[0]
    what = f"{gpu.name} (driver {gpu.driver or 'version unknown'})" + (f" and {len(gpus) - 1} more" if len(gpus) > 1 else "")
    cpu_instead = "or set device: cpu to train on the CPU on purpose"
    if cuda_build is None:
        return (f"{what} is here but torch {torch_version} is a CPU-only build; run `make env` (the lock's CUDA "
                f"build) or `{BACKEND_FIX}`, {cpu_instead}")
    needed = driver_needed(cuda_build)
    if torch_sees == 0:
        branch = _int(gpu.driver.split(".")[0]) if gpu.driver else 0
        if branch and branch < needed:
            fix = f"run `{BACKEND_FIX}` (needs driver ≥ 525)" if branch >= 525 else \
                "update the NVIDIA driver to 525 or newer"
            return (f"{what} is here but torch {torch_version} cannot use it: it was built for CUDA {cuda_build}, "
                    f"which needs driver ≥ {needed}; {fix}, {cpu_instead}")
        hidden = os.environ.get("CUDA_VISIBLE_DEVICES")
        why = f"CUDA_VISIBLE_DEVICES={hidden!r} hides it" if hidden is not None else \
            "the driver and torch's CUDA runtime do not start (a container without the GPU, or a driver update not yet rebooted?)"
        return (f"{what} is here but torch {torch_version} (CUDA {cuda_build}) sees no GPU: {why}; "
                f"check `nvidia-smi` and `python -c 'import torch; torch.cuda.init()'`, {cpu_instead}")
    for cap in capabilities or []:
        if arch_list and not arch_supported(cap, arch_list):
            return (f"{what} has compute capability {cap[0]}.{cap[1]} but torch {torch_version} (CUDA {cuda_build}) has "
                    f"kernels for {' '.join(arch_list)} only; run `{BACKEND_FIX}` (kernels from sm_50 up), {cpu_instead}")
    return ""


def cuda_problem() -> str:
    """unusable_gpu() for this machine; nvidia-smi is asked only when torch sees no usable GPU.
    A ROCm build (AMD) is torch's own business: nothing to say."""
    if getattr(torch.version, "hip", None):
        return ""
    sees = torch.cuda.device_count() if torch.cuda.is_available() else 0
    caps = [torch.cuda.get_device_capability(i) for i in range(sees)]
    arch = torch.cuda.get_arch_list() if sees else None
    if sees and all(arch_supported(c, arch) for c in caps):
        return ""
    gpus = nvidia_gpus() or ([NvidiaGpu(torch.cuda.get_device_name(0), "")] if sees else [])
    return unusable_gpu(gpus, torch.version.cuda, sees, torch.__version__.split("+")[0], arch, caps)


def pick_device(name: str = "auto") -> torch.device:
    if name in ("auto", "cuda") or name.startswith("cuda:"):
        problem = cuda_problem()
        if problem:
            raise DeviceError(f"device: {name}: {problem}")
    if name in ("auto", "cuda") and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))      # torchrun: one GPU per rank
    if name == "auto":
        if torch.cuda.is_available():
            count = torch.cuda.device_count()
            if count > 1:
                device, message = auto_gpu(count)
                print(message, file=sys.stderr)
                return device
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device: {name!r} was asked for but no CUDA GPU is visible; "
                              "set device: auto or cpu in params.yaml (or -S device=cpu)")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise DeviceError(f"device: {name!r} was asked for but only {torch.cuda.device_count()} "
                              "CUDA device(s) are visible; pick a lower index")
        return torch.device(name)
    if name == "mps" and not _mps_available():
        raise DeviceError("device: 'mps' was asked for but Apple's MPS backend is not available; "
                          "set device: auto or cpu")
    return torch.device(name)


def auto_gpu(count: int, folder=None) -> tuple[torch.device, str]:
    """With `count` GPUs visible: the first one no other running stage holds (see pipeline.core.gpus),
    and one line saying which; cuda:0, shared, when every GPU is held."""
    from pipeline.core.gpus import claim, holders

    index = claim(count, folder)
    if index is None:
        return torch.device("cuda:0"), (f"device: auto: all {count} GPUs are held by other running stages; "
                                        "sharing cuda:0 (set device: cuda:N to choose)")
    busy = holders(count, folder)
    taken = f" (held by other stages: {', '.join(f'cuda:{i}' for i in sorted(busy))})" if busy else ""
    return torch.device(f"cuda:{index}"), f"device: auto took cuda:{index} of {count} GPUs{taken}"


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def choose_precision(requested: str, device_type: str, bf16_native: bool = False, bf16_emulated: bool = False) -> str:
    """bf16 | fp16 | fp32 for `requested` (auto | bf16 | fp16 | fp32) on a device of `device_type` whose
    bf16 is native (Ampere and newer) or only emulated; an impossible request is one line."""
    if requested == "fp32":
        return "fp32"
    if requested == "auto":
        if device_type != "cuda":
            return "fp32"
        return "bf16" if bf16_native else "fp16"
    if requested == "bf16":
        if device_type != "cuda":
            raise DeviceError(f"precision: 'bf16' needs a CUDA device, this run is on {device_type}; "
                              "set precision: auto or fp32")
        if not (bf16_native or bf16_emulated):
            raise DeviceError("precision: 'bf16': this GPU cannot compute in bf16; set precision: auto (fp16) or fp32")
        return "bf16"
    if requested == "fp16":
        if device_type not in ("cuda", "cpu"):
            raise DeviceError(f"precision: 'fp16' is not supported on {device_type} here; set precision: auto or fp32")
        return "fp16"
    raise DeviceError(f"precision: {requested!r} is not allowed; choose one of auto, bf16, fp16, fp32")


DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}


def precision_name(dtype: torch.dtype | None) -> str:
    """bf16 | fp16 | fp32: the name params.yaml gives an autocast dtype (None: fp32)."""
    return next(name for name, d in DTYPES.items() if d is dtype)


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype to train with (fp16 means the engine also scales the loss), or None for fp32."""
    native = emulated = False
    if device.type == "cuda":          # this device's own capability, not the current device's
        native = torch.cuda.get_device_capability(device)[0] >= 8 or bool(getattr(torch.version, "hip", None))
        emulated = True
    return DTYPES[choose_precision(precision, device.type, native, emulated)]


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously), so a wall-clock time covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed python, numpy and torch. `deterministic`: kernels that repeat bit for bit (cuDNN's
    autotuner off); False lets cuDNN benchmark and pick its fastest kernels, which may differ
    run to run in the last bits."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic


def deterministic_algorithms(mode: bool) -> None:
    """`torch.use_deterministic_algorithms(mode, warn_only=True)` without loading TorchInductor:
    torch's function imports it only to copy the flag into the compiler's config, 1.3 s of CPU in
    every stage process, most of which never compile. The compiler's copy is set here when it is
    already loaded, and by `runtime.compiled` before anything is compiled."""
    try:
        torch._C._set_deterministic_algorithms(mode, warn_only=True)
    except (AttributeError, TypeError):     # a torch whose private setter differs: its public function
        torch.use_deterministic_algorithms(mode, warn_only=True)
        return
    inductor = sys.modules.get("torch._inductor.config")
    if inductor is not None:
        inductor.deterministic = mode
