"""What every benchmark script shares: the device's name, a synchronised timer, and the training
rate the engine's history gives once the warm-up epoch is left out."""
from __future__ import annotations

import time

import torch

from pipeline.core.device import synchronize


def device_label(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu x{torch.get_num_threads()} threads"


def file_stem(label: str) -> str:
    """A device label as a file name: "NVIDIA H100 80GB HBM3" -> "nvidia_h100_80gb_hbm3"."""
    return "".join(c if c.isalnum() else "_" for c in label).strip("_").lower()


def timed(fn, device: torch.device, repeat: int = 3) -> float:
    """Seconds per call of fn: one warm-up call, then `repeat` calls with the device synchronised."""
    fn()
    synchronize(device)
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    synchronize(device)
    return (time.perf_counter() - t0) / repeat


def training_rate(history: list[dict], n: int) -> float:
    """Samples per second of training (evaluation excluded) over every epoch after the first,
    which is the warm-up; `n` samples per epoch."""
    first, last = history[0], history[-1]
    return n * (last["epoch"] - first["epoch"]) / (last["elapsed_seconds"] - first["elapsed_seconds"])
