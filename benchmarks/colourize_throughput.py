"""colourize training speed as configured in params.yaml (`colourize`): images per second and
seconds per epoch of each headline network, and from them the time the whole params sweep
and the three headline runs would take on this machine.

    python -m benchmarks.colourize_throughput [--device auto] [--samples N] [--epochs 2]

Synthetic uint8 32×32 RGB images and colour-class maps on the device as the pipeline keeps them;
the first epoch is a warm-up and is not counted. CIFAR-10 has 5,000 training horses.
"""
from __future__ import annotations

import argparse
import dataclasses

import torch

from benchmarks.common import device_label, training_rate
from pipeline.colourize import model as col
from pipeline.colourize.config import ColourizeConfig
from pipeline.core.device import autocast_dtype, pick_device, seed_everything
from pipeline.core.engine import fit
from pipeline.core.params import load_params, parse
from pipeline.core.split import Split

HORSES = 5_000


def seconds_per_epoch(model_name: str, run: col.Run, data: Split, epochs: int, amp) -> float:
    model = col.build(model_name, run).to(data.inputs.device)
    tc = dataclasses.replace(run.train_config(), epochs=epochs + 1, monitor="train_loss", mode="min")   # no validation set
    out = fit(model, data, None, col.pixel_loss, tc, amp_dtype=amp, progress=False)
    return HORSES / training_rate(out.history, len(data))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--samples", type=int, default=None, help="default: 5,000 on CUDA, 500 elsewhere")
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    seed_everything(0)
    device = pick_device(args.device)
    n = args.samples or (HORSES if device.type == "cuda" else 500)
    cfg = parse(ColourizeConfig, load_params()["colourize"], "colourize")
    amp = autocast_dtype(device, "auto")
    name = device_label(device)
    g = torch.Generator().manual_seed(0)
    data = Split(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g).to(device),
                 torch.randint(0, cfg.palette.colours, (n, 32, 32), dtype=torch.uint8, generator=g).to(device))
    print(f"device: {name}; {n:,} images, precision {amp or 'fp32'}; times per epoch of {HORSES:,} horses")
    total = 0.0
    for m in col.MODELS:
        run = cfg.run(m)
        s = seconds_per_epoch(m, run, data, args.epochs, amp)
        total += s * run.epochs
        print(f"{m:9s} NF {run.filters:3d} k {run.kernel}: {HORSES / s:10,.0f} images/s, {s:7.2f} s/epoch, "
              f"{s * run.epochs:8.1f} s for its {run.epochs} epochs")
    runs = 3
    for m in ("cnn", "unet"):
        sweep, run = getattr(cfg, f"sweep_{m}"), cfg.run(m)
        total += len(sweep.lr) * run.epochs * seconds_per_epoch(m, run, data, 1, amp)   # lr does not change speed
        runs += len(sweep.lr)
        for key in ("filters", "kernel"):
            for v in getattr(sweep, key):
                total += run.epochs * seconds_per_epoch(m, dataclasses.replace(run, **{key: v}), data, 1, amp)
                runs += 1
    print(f"all {runs} runs (headline + sweeps), training only: {total / 60:.1f} min")


if __name__ == "__main__":
    main()
