"""Training-engine throughput: samples per second of the superres MLPs, per device and batch size.

    python -m benchmarks.engine_throughput [--device auto] [--epochs 3]

Synthetic uint8 data of the full-scale superres size (114,688 literal samples), on the device
as the pipeline keeps it; the first epoch is a warm-up and is not counted.
"""
from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from benchmarks.common import device_label
from pipeline.core.device import autocast_dtype, pick_device, seed_everything
from pipeline.core.engine import fit
from pipeline.core.schedule import TrainConfig
from pipeline.core.split import Split
from pipeline.superres.models import build_model
from pipeline.superres.training import to_unit


def measure(device: torch.device, target: str, batch: int, epochs: int, n: int = 114_688) -> float:
    g = torch.Generator().manual_seed(0)
    out = 3 if target == "pixel" else 12
    x = torch.randint(0, 256, (n, 27), dtype=torch.uint8, generator=g).to(device)
    y = torch.randint(0, 256, (n, out), dtype=torch.uint8, generator=g).to(device)
    model = build_model(2, target, (64, 128) if target == "pixel" else (128, 128), target != "pixel").to(device)
    cfg = TrainConfig(epochs=epochs + 1, batch_size=batch, lr=1e-3, monitor="train_loss")
    result = fit(model, Split(x, y), None, nn.MSELoss(), cfg, prepare=to_unit,
                 amp_dtype=autocast_dtype(device, "auto"), progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    timed = result.history[1:]
    return n * len(timed) / sum(h["epoch_seconds"] for h in timed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batches", default="256,1024,4096")
    args = ap.parse_args()
    seed_everything(0)
    device = pick_device(args.device)
    name = device_label(device)
    print(f"device: {name}")
    print(f"{'model':10s} {'batch':>6s} {'samples/s':>12s}")
    for target in ("pixel", "subpixel"):
        for batch in map(int, args.batches.split(",")):
            t0 = time.perf_counter()
            rate = measure(device, target, batch, args.epochs)
            print(f"{target:10s} {batch:6d} {rate:12,.0f}   ({time.perf_counter() - t0:.1f}s)")


if __name__ == "__main__":
    main()
