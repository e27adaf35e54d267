"""Device and precision choice: `auto` = CUDA, then MPS, then CPU; bf16 autocast on CUDA."""
from __future__ import annotations

import contextlib
import os
import random
import sys

import numpy as np
import torch

from pipeline.core.errors import DeviceError


def pick_device(name: str = "auto") -> torch.device:
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


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype to train with, or None for plain fp32."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        if device.type != "cuda":
            raise DeviceError(f"precision: 'bf16' needs a CUDA device, this run is on {device.type}; "
                              "set precision: auto or fp32")
        return torch.bfloat16
    return torch.bfloat16 if device.type == "cuda" else None


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously), so a wall-clock time covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch; CPU kernels deterministic so CPU runs repeat bit for bit."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
