"""Our engine against the seeds' own way of training: samples per second of every training family.

    python -m benchmarks.seed_loop [--device auto] [--scale 1.0] [--out benchmarks/results]
    python -m benchmarks.seed_loop --engine-options      # our engine: eager vs torch.compile vs channels_last

The seeds trained with a torchvision-style dataset object (each sample a PIL image turned into a
tensor by `ToTensor`, and `Normalize` where they normalised), a `DataLoader`, fp32 and a Python loop.
Our engine keeps the uint8 data on the device and slices batches from a device-side permutation.
Each family below trains the same model, loss, optimiser and batch size both ways on the same
device; the first pass is a warm-up, the second is timed (training only). Data: synthetic uint8 in
each dataset's true shape and dtype (random pixels and labels: the speed of a step does not depend
on what the pixels show). Writes a Markdown table and JSON named after the device.

`--engine-options` measures instead what the params `compile`, `memory_format`, `deterministic` and
`precision` choose between: the engine eager with contiguous batches, with `torch.compile`, with
channels_last batches and weights (the families with 2-d convolutions), with cuDNN free to pick
its fastest kernels, and in fp32 where the auto precision is bf16 or fp16.
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from benchmarks.common import device_label, file_stem
from pipeline.core import runtime
from pipeline.core.device import autocast_dtype, pick_device, seed_everything, synchronize
from pipeline.core.engine import fit
from pipeline.core.schedule import TrainConfig
from pipeline.core.split import Split


@dataclass
class Family:
    name: str
    make_model: Callable[[], nn.Module]
    image: tuple[int, ...]              # one sample's uint8 shape as stored (H, W) or (H, W, C)
    batch: int                          # the seed's batch size
    samples: int                        # timed per pass (scaled by --scale)
    loss: Callable[[Tensor, Tensor], Tensor]
    target: Callable[[int, torch.Generator], Tensor]      # n -> labels (or per-pixel classes)
    seed_input: Callable[[Tensor], Tensor]    # a ToTensor batch (B, C, H, W) float -> what the model takes
    our_input: Callable[[Tensor], Tensor]     # a uint8 batch slice on the device -> what the model takes
    normalise: tuple | None = None      # the seed's Normalize(mean, std), if it used one


def _classes(k: int):
    return lambda n, g: torch.randint(0, k, (n,), generator=g)


def families() -> list[Family]:
    from pipeline.autoencoder.model import Autoencoder, reconstruction_loss
    from pipeline.batch_size.study import MLP
    from pipeline.colourize.config import Run
    from pipeline.colourize.model import build as colourize_net
    from pipeline.colourize.model import pixel_loss
    from pipeline.distill.models import MobileNetStudent
    from pipeline.emnist.models import CnnConfig, MlpConfig
    from pipeline.emnist.models import build as emnist_net
    from pipeline.fer.data import FerNet
    from pipeline.fer.model import FerCNN

    ce = nn.CrossEntropyLoss()
    flat = lambda x: x.reshape(x.shape[0], -1)
    unit_flat = lambda x: x.reshape(x.shape[0], -1).float().div_(255)
    squeeze = lambda x: x[:, 0]
    chw = lambda x: x.permute(0, 3, 1, 2)
    return [
        Family("batch_size MLP (784-256-128-10)", lambda: MLP((256, 128)), (28, 28), 64, 16384, ce, _classes(10),
               flat, unit_flat),
        Family("autoencoder (784-500-200-100-30-…-784)", lambda: Autoencoder(), (28, 28), 100, 16384,
               lambda out, x: reconstruction_loss(out, x), None, flat, unit_flat, normalise=((0.0,), (1.0,))),
        Family("EMNIST MLP (dropout)", lambda: emnist_net("mlp", MlpConfig(), CnnConfig(), 62), (28, 28), 128, 8192,
               ce, _classes(62), squeeze, lambda x: x),
        Family("EMNIST CNN (64-128-256)", lambda: emnist_net("cnn", MlpConfig(), CnnConfig(), 62), (28, 28), 128, 512,
               ce, _classes(62), squeeze, lambda x: x),
        Family("FER CNN", lambda: FerCNN(FerNet()), (48, 48), 64, 512, ce, _classes(7), squeeze, lambda x: x),
        Family("MobileNetV2 student (CIFAR)", lambda: MobileNetStudent(), (32, 32, 3), 128, 256, ce, _classes(10),
               lambda x: x, chw, normalise=((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))),
        Family("colourize base CNN (NF 32)", lambda: colourize_net("cnn", Run()), (32, 32, 3), 100, 2048, pixel_loss,
               lambda n, g: torch.randint(0, 24, (n, 32, 32), generator=g), lambda x: x, chw),
    ]


class SeedStyleImages(torch.utils.data.Dataset):
    """What torchvision's MNIST / CIFAR10 datasets do per sample: a PIL image, then the transform."""

    def __init__(self, images: Tensor, targets: Tensor, transform):
        self.images, self.targets, self.transform = images.numpy(), targets, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from PIL import Image

        img = Image.fromarray(self.images[i], mode="L" if self.images[i].ndim == 2 else "RGB")
        return self.transform(img), self.targets[i]


def seed_way(f: Family, images: Tensor, targets: Tensor, device: torch.device) -> float:
    """Samples per second of the seeds' loop: DataLoader over PIL images, ToTensor (+ Normalize), fp32."""
    from torchvision import transforms

    steps = [transforms.ToTensor()] + ([transforms.Normalize(*f.normalise)] if f.normalise else [])
    loader = torch.utils.data.DataLoader(SeedStyleImages(images, targets, transforms.Compose(steps)),
                                         batch_size=f.batch, shuffle=True)
    model = f.make_model().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def one_pass() -> None:
        for x, y in loader:
            x, y = f.seed_input(x.to(device)), y.to(device)
            opt.zero_grad()
            out = model(x)
            f.loss(out, x if f.target is None else y).backward()
            opt.step()

    one_pass()                                   # warm-up
    synchronize(device)
    t0 = time.perf_counter()
    one_pass()
    synchronize(device)
    return len(images) / (time.perf_counter() - t0)


def our_way(f: Family, images: Tensor, targets: Tensor, device: torch.device, precision: str = "auto") -> float:
    """Samples per second of the engine: uint8 on the device, index slices, autocast where it helps."""
    x = images.to(device)
    y = x if f.target is None else targets.to(device)

    def prepare(xb: Tensor, yb: Tensor, training: bool):
        inputs = f.our_input(xb)
        return inputs, (inputs if f.target is None else yb)

    cfg = TrainConfig(epochs=2, batch_size=f.batch, lr=1e-3, monitor="train_loss")
    result = fit(f.make_model().to(device), Split(x, y), None, f.loss, cfg, prepare=prepare,
                 amp_dtype=autocast_dtype(device, precision), progress=False)
    return len(images) / result.history[-1]["epoch_seconds"]        # the second epoch; the first warms up


def compute_limit(f: Family, images: Tensor, targets: Tensor, device: torch.device) -> float:
    """Samples per second of the model's own forward, backward and step on one batch already prepared
    on the device, repeated: what no data handling can beat (with the engine's precision)."""
    x = f.our_input(images[:f.batch].to(device))
    y = x if f.target is None else targets[:f.batch].to(device)
    model = f.make_model().to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    amp = autocast_dtype(device, "auto")
    steps = max(1, len(images) // f.batch)

    def one_pass() -> None:
        for _ in range(steps):
            opt.zero_grad()
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                loss = f.loss(model(x), x.float().div(255) if f.target is None and x.dtype == torch.uint8 else y)
            loss.backward()
            opt.step()

    one_pass()
    synchronize(device)
    t0 = time.perf_counter()
    one_pass()
    synchronize(device)
    return steps * f.batch / (time.perf_counter() - t0)


def engine_options(f: Family, images: Tensor, targets: Tensor, device: torch.device) -> dict:
    """Samples per second of our engine with each execution option (second epoch; the first also
    compiles). channels_last only where the model has 2-d convolutions; deterministic_off lets
    cuDNN pick its fastest kernels (params `deterministic: false`); fp32 against the auto precision
    (bf16 or fp16) only where auto is not fp32 already."""
    convolutional = any(isinstance(m, nn.Conv2d) for m in f.make_model().modules())
    options = {"eager": runtime.Runtime(memory_format="contiguous"),
               "compile": runtime.Runtime(compile=True, memory_format="contiguous")}
    if convolutional:
        options["channels_last"] = runtime.Runtime(memory_format="channels_last")
    rates = {}
    for name, option in options.items():
        runtime.configure(option)
        try:
            rates[name] = round(our_way(f, images, targets, device), 1)
        finally:
            runtime.configure(runtime.Runtime())
    runtime.configure(runtime.Runtime(memory_format="contiguous"))
    try:
        seed_everything(0, deterministic=False)
        rates["deterministic_off"] = round(our_way(f, images, targets, device), 1)
        seed_everything(0, deterministic=True)
        if autocast_dtype(device, "auto") is not None:
            rates["fp32"] = round(our_way(f, images, targets, device, "fp32"), 1)
    finally:
        seed_everything(0, deterministic=True)
        runtime.configure(runtime.Runtime())
    return rates


def _write_options(rows: list[dict], label: str, out: Path, stem: str) -> None:
    (out / f"engine_options_{stem}.json").write_text(json.dumps({"device": label, "rows": rows}, indent=2) + "\n")
    lines = [f"Our engine's execution options on {label} (samples/s of training, second epoch; synthetic uint8 "
             "data in each dataset's shape)", "",
             "| family | batch | eager | torch.compile | compile / eager | channels_last | channels_last / eager "
             "| deterministic off / eager | fp32 / eager |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cl, eager = r.get("channels_last"), r["eager"]
        last = f"{cl:,.0f} | {cl / eager:.2f}×" if cl else "— | —"
        fast = f"{r['deterministic_off'] / eager:.2f}×" if "deterministic_off" in r else "—"
        fp32 = f"{r['fp32'] / eager:.2f}×" if "fp32" in r else "— (auto is fp32 here)"
        lines.append(f"| {r['family']} | {r['batch']} | {eager:,.0f} | {r['compile']:,.0f} | "
                     f"{r['compile'] / eager:.2f}× | {last} | {fast} | {fp32} |")
    (out / f"engine_options_{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"-> {out / f'engine_options_{stem}.md'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies every family's timed sample count")
    ap.add_argument("--only", default="", help="comma-separated substrings of family names to run")
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--engine-options", action="store_true",
                    help="time our engine eager, compiled and channels_last instead of against the seed loop")
    args = ap.parse_args()
    seed_everything(0)
    device = pick_device(args.device)
    label = device_label(device)
    rows = []
    print(f"device: {label}")
    for f in families():
        if args.only and not any(s in f.name for s in args.only.split(",")):
            continue
        n = max(f.batch, int(f.samples * args.scale))
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (n, *f.image), dtype=torch.uint8, generator=g)
        targets = f.target(n, g) if f.target is not None else torch.zeros(n)
        if args.engine_options:
            rates = engine_options(f, images, targets, device)
            rows.append({"family": f.name, "batch": f.batch, "samples": n, **rates})
            print(f"{f.name:42s} batch {f.batch:4d}  " + "  ".join(f"{k} {v:10,.0f}/s" for k, v in rates.items()),
                  flush=True)
            continue
        seed = seed_way(f, images, targets, device)
        ours = our_way(f, images, targets, device)
        limit = compute_limit(f, images, targets, device)
        rows.append({"family": f.name, "batch": f.batch, "samples": n, "seed_samples_per_s": round(seed, 1),
                     "ours_samples_per_s": round(ours, 1), "ratio": round(ours / seed, 2),
                     "compute_limit_samples_per_s": round(limit, 1), "ours_of_limit": round(ours / limit, 2)})
        print(f"{f.name:42s} batch {f.batch:4d}  seed {seed:10,.0f}/s  ours {ours:10,.0f}/s  {ours / seed:6.2f}x"
              f"  limit {limit:10,.0f}/s ({ours / limit:.0%})", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = file_stem(label)
    if args.engine_options:
        _write_options(rows, label, out, stem)
        return
    (out / f"seed_loop_{stem}.json").write_text(json.dumps({"device": label, "rows": rows}, indent=2) + "\n")
    lines = [f"Seed-style loop vs our engine on {label} (synthetic uint8 data in each dataset's shape; samples/s "
             "of training, second pass; the compute limit is the model's own step on a ready batch)", "",
             "| family | batch | seed loop | ours | ours / seed | compute limit | ours / limit |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['family']} | {r['batch']} | {r['seed_samples_per_s']:,.0f} | {r['ours_samples_per_s']:,.0f} | "
              f"{r['ratio']:.1f}× | {r['compute_limit_samples_per_s']:,.0f} | {r['ours_of_limit']:.0%} |" for r in rows]
    (out / f"seed_loop_{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"-> {out / f'seed_loop_{stem}.md'}")


if __name__ == "__main__":
    main()
