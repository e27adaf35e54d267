"""EMNIST models' throughput: training and inference samples per second of the MLP, the CNN and
the factorised CNN as configured in params.yaml (`emnist`), on one device.

    python -m benchmarks.emnist_throughput [--device auto] [--samples N] [--epochs 2]

Synthetic uint8 28×28 images with 62 classes, on the device as the pipeline keeps them; the
first epoch is a warm-up and is not counted. Batch size and optimiser from `emnist.train`.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from benchmarks.common import device_label, training_rate
from pipeline.core.device import autocast_dtype, pick_device, seed_everything
from pipeline.core.engine import fit
from pipeline.core.params import load_params, parse
from pipeline.core.scores import cross_entropy
from pipeline.core.split import Split
from pipeline.emnist.data import N_CLASSES, EmnistConfig
from pipeline.emnist.models import MODELS, build, parameter_counts, predict


def measure(name: str, cfg: EmnistConfig, device: torch.device, n: int, epochs: int) -> tuple[float, float]:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=g).to(device)
    y = torch.randint(0, N_CLASSES, (n,), generator=g).to(device)
    model = build(name, cfg.mlp, cfg.cnn, N_CLASSES).to(device)
    amp = autocast_dtype(device, "auto")
    tc = dataclasses.replace(cfg.train.train_config(), epochs=epochs + 1, monitor="train_loss", mode="min")
    result = fit(model, Split(x, y), None, cross_entropy, tc, amp_dtype=amp, progress=False)
    train_rate = training_rate(result.history, n)
    predict(model, x[:cfg.train.eval_batch], cfg.train.eval_batch, amp)            # warm-up
    _, infer_rate = predict(model, x, cfg.train.eval_batch, amp)
    return train_rate, infer_rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--samples", type=int, default=None, help="default: 131,072 on CUDA, 4,096 elsewhere")
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    seed_everything(0)
    device = pick_device(args.device)
    n = args.samples or (131_072 if device.type == "cuda" else 4_096)
    cfg = parse(EmnistConfig, load_params()["emnist"], "emnist")
    name = device_label(device)
    counts = parameter_counts(cfg.mlp, cfg.cnn, N_CLASSES)
    print(f"device: {name}; {n:,} images, batch {cfg.train.batch_size}")
    print(f"{'model':11s} {'parameters':>11s} {'train samples/s':>16s} {'inference samples/s':>20s}")
    for model in MODELS:
        t0 = time.perf_counter()
        train_rate, infer_rate = measure(model, cfg, device, n, args.epochs)
        print(f"{model:11s} {counts[model]:11,d} {train_rate:16,.0f} {infer_rate:20,.0f}   "
              f"({time.perf_counter() - t0:.1f}s)")


if __name__ == "__main__":
    main()
