"""The residual colouriser's design sweep, at reduced scale on a CPU, on real photographs:

    python -m benchmarks.colourize_design [--device cpu] [--epochs 12] [--out benchmarks/results]

A stand-in for CIFAR-10's horses that needs no download: six colour photographs that ship with
scikit-image and scikit-learn (astronaut, chelsea, coffee, rocket, china, flower), halved, cut
into 32×32 patches with a stride of 16. Two whole photographs (coffee, flower) are the validation
set, so no validation patch overlaps a training one; training patches are doubled by their
mirror images. The palette, targets, loss and metric are the experiment's own (k-means colours,
nearest-colour classes, per-pixel cross-entropy and accuracy). Each design trains with Adam at
10⁻³, batch 100, for `--epochs` epochs; the base CNN and the U-Net run beside them at the same
budget as the bar. The ranking says which residual design is worth its parameters here; it
claims nothing about horses. Writes colourize_design.json and .md to `--out`.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from benchmarks.common import device_label
from pipeline.colourize import model as col
from pipeline.colourize.config import Palette, Run
from pipeline.core.device import pick_device, seed_everything
from pipeline.core.engine import fit, parameter_count
from pipeline.core.split import Split

TRAIN_PHOTOS = ("astronaut", "chelsea", "rocket", "china")
VAL_PHOTOS = ("coffee", "flower")
PATCH, STRIDE = 32, 16

# (name, model, settings): the residual designs, then the two bars
DESIGNS = [
    ("residual, 1 block per level (the first design)", "residual", {"blocks": 1, "levels": 2}),
    ("residual, 2 blocks per level", "residual", {"blocks": 2, "levels": 2}),
    ("residual, 2 blocks per level, cosine", "residual", {"blocks": 2, "levels": 2, "schedule": "cosine"}),
    ("residual, 2 levels down, 48 filters, cosine", "residual", {"blocks": 2, "levels": 2, "filters": 48,
                                                                 "schedule": "cosine"}),
    ("residual, 1 level down, 2 blocks, cosine", "residual", {"blocks": 2, "levels": 1, "schedule": "cosine"}),
    ("residual, full resolution, 4 blocks, cosine", "residual", {"blocks": 4, "levels": 0, "schedule": "cosine"}),
    ("base CNN (bar)", "cnn", {}),
    ("U-Net (bar)", "unet", {}),
    ("U-Net, cosine (bar)", "unet", {"schedule": "cosine"}),
]


def photo(name: str) -> torch.Tensor:
    """uint8 (3, H/2, W/2): the photograph, halved by 2×2 averaging."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        image = load_sample_image(f"{name}.jpg")
    else:
        import skimage.data

        image = getattr(skimage.data, name)()
    x = torch.from_numpy(image[..., :3].copy()).permute(2, 0, 1).float()
    x = torch.nn.functional.avg_pool2d(x[None], 2)[0]
    return x.round().clamp(0, 255).to(torch.uint8)


def patches(names: tuple[str, ...], mirror: bool) -> torch.Tensor:
    """uint8 (N, 3, 32, 32): every 32×32 window at a stride of 16 of each photograph (and its mirror)."""
    out = []
    for name in names:
        x = photo(name)
        windows = x.unfold(1, PATCH, STRIDE).unfold(2, PATCH, STRIDE)           # (3, rows, cols, 32, 32)
        out.append(windows.permute(1, 2, 0, 3, 4).reshape(-1, 3, PATCH, PATCH))
    x = torch.cat(out)
    return torch.cat([x, x.flip(-1)]) if mirror else x


def data(device: torch.device, seed: int) -> tuple[Split, Split, torch.Tensor]:
    train_x, val_x = patches(TRAIN_PHOTOS, mirror=True).to(device), patches(VAL_PHOTOS, mirror=False).to(device)
    palette = col.build_palette(train_x, Palette(), seed)
    return (Split(train_x, col.nearest_colour(train_x, palette)), Split(val_x, col.nearest_colour(val_x, palette)),
            palette)


def run_design(model: str, settings: dict, train: Split, val: Split, epochs: int, seed: int) -> dict:
    run = Run(epochs=epochs, **settings)
    torch.manual_seed(seed)
    net = col.build(model, run).to(train.inputs.device)
    start = time.perf_counter()
    out = fit(net, train, val, col.pixel_loss, run.train_config(), seed=seed, metrics=col.pixel_accuracy,
              progress=False)
    accuracies = [r["val_accuracy"] for r in out.history]
    return {"model": model, **settings, "parameters": parameter_count(net), "epochs": epochs,
            "val_accuracy_last": accuracies[-1], "val_accuracy_best": max(accuracies),
            "best_epoch": 1 + accuracies.index(max(accuracies)), "seconds": round(time.perf_counter() - start, 1)}


def markdown(result: dict) -> str:
    lines = [f"# colourize: the residual net's design sweep on {result['device']}", "",
             f"{result['train_patches']:,} training patches (photographs {', '.join(TRAIN_PHOTOS)}, mirrored), "
             f"{result['val_patches']:,} validation patches ({', '.join(VAL_PHOTOS)}), 32×32, "
             f"{result['epochs']} epochs each; the commonest colour alone scores "
             f"{100 * result['floor']:.1f} %.", "",
             "| design | parameters | val accuracy, last % | best % (epoch) | seconds |", "|---|---:|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| {r['name']} | {r['parameters']:,} | {100 * r['val_accuracy_last']:.2f} | "
                     f"{100 * r['val_accuracy_best']:.2f} ({r['best_epoch']}) | {r['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", help="comma-separated design numbers (1-based) to run, for a quick look")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args(argv)
    device = pick_device(args.device)
    seed_everything(args.seed)
    train, val, palette = data(device, args.seed)
    floor = float(torch.bincount(val.targets.flatten().long(), minlength=len(palette)).max()) / val.targets.numel()
    picked = [DESIGNS[int(i) - 1] for i in args.only.split(",")] if args.only else DESIGNS
    rows = []
    for name, model, settings in picked:
        rows.append({"name": name, **run_design(model, settings, train, val, args.epochs, args.seed)})
        r = rows[-1]
        print(f"{name}: {r['parameters']:,} parameters, val {100 * r['val_accuracy_last']:.2f} % last, "
              f"{100 * r['val_accuracy_best']:.2f} % best (epoch {r['best_epoch']}), {r['seconds']:.0f} s", flush=True)
    result = {"device": device_label(device), "epochs": args.epochs, "train_patches": len(train),
              "val_patches": len(val), "floor": floor, "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "colourize_design.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "colourize_design.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
