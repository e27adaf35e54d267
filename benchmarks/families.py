"""Every GPU experiment's training families through the engine, as params.yaml configures them, on
same-shaped synthetic data: samples/s, peak memory, seconds per full-size epoch, and from them the
predicted training time of each experiment's full `dvc repro` on this device.

    python -m benchmarks.families [--device auto] [--samples-scale 1.0] [--scale full|smoke] [--json PATH]

Families: EMNIST MLP / CNN / factorised CNN, the FER CNN (with its augmentation), the MobileNetV2
student (distillation loss over stored views), the whole ResNet-50 fine-tuned at its resolution,
ResNet-50 inference (features and view logits), the three colourisers. Each trains two epochs of
`samples` images (the first warms up, the second is timed). The prediction counts training and
the teacher's inference passes, not evaluation, and prices a sweep's runs at its base network's
rate (filter and kernel variants differ). `--scale smoke`: the networks as the smoke runs configure
them (ResNet-50 at 64 px) on two batches of 32 each, to check the script on a CPU in seconds;
its figures predict nothing. Imports nothing from dvc, mlflow or papermill.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.common import device_label, training_rate
from pipeline.core.device import autocast_dtype, pick_device, seed_everything, synchronize
from pipeline.core.engine import fit
from pipeline.core.params import load_params, parse
from pipeline.core.split import Split

EMNIST_TRAIN = int(697_932 * 0.9)       # ByClass training images less the validation share
FER_TRAIN = 28_709
CIFAR_TRAIN, CIFAR_ALL = 45_000, 60_000  # training images less distill.data.val_size; all with the test split
HORSES = 5_000
SMOKE_BATCH = 32                        # --scale smoke: batches this small, two of them per family
_smoke = False


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10, 1)      # the process's, KiB on Linux


def _reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _train(model, data: Split, loss, tc, amp, **kw) -> float:
    """Training samples/s of the second of two epochs."""
    batch = min(tc.batch_size, SMOKE_BATCH) if _smoke else tc.batch_size
    result = fit(model, data, None, loss, dataclasses.replace(tc, epochs=2, batch_size=batch, monitor="train_loss",
                                                              mode="min"), amp_dtype=amp, progress=False, **kw)
    return training_rate(result.history, len(data))


def _infer(model, x, batch: int, amp) -> float:
    from pipeline.distill.models import throughput

    model.eval()
    return throughput(model, x, min(batch, SMOKE_BATCH) if _smoke else batch, amp)


def measure(device: torch.device, scale: float, smoke: bool = False) -> list[dict]:
    global _smoke
    _smoke = smoke
    params = load_params()
    amp = autocast_dtype(device, "auto")
    g = torch.Generator().manual_seed(0)
    rows: list[dict] = []

    def n_of(full: int, batch: int) -> int:
        return 2 * SMOKE_BATCH if smoke else max(2 * batch, int(full * scale))

    def row(experiment, family, rate, full, epochs, **extra):
        rows.append({"experiment": experiment, "family": family, "samples_per_s": round(rate, 1),
                     "peak_memory_mb": _peak_mb(device), "seconds_per_epoch": round(full / rate, 2),
                     "epochs": epochs, "predicted_seconds": round(epochs * full / rate, 1), **extra})
        print(f"{experiment:9s} {family:34s} {rate:12,.0f}/s  {full / rate:9.2f} s/epoch  "
              f"peak {rows[-1]['peak_memory_mb']:9,.0f} MB", flush=True)

    from pipeline.emnist.data import N_CLASSES, EmnistConfig
    from pipeline.emnist.models import MODELS, build
    from pipeline.core.scores import cross_entropy

    cfg = parse(EmnistConfig, params["emnist"], "emnist").at_scale("smoke" if smoke else "full")
    n = n_of(131_072, cfg.train.batch_size)
    data = Split(torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=g).to(device),
                 torch.randint(0, N_CLASSES, (n,), generator=g).to(device))
    for name in MODELS:
        _reset(device)
        rate = _train(build(name, cfg.mlp, cfg.cnn, N_CLASSES).to(device), data, cross_entropy,
                      cfg.train.train_config(), amp)
        row("emnist", name, rate, EMNIST_TRAIN, cfg.train.epochs)
    del data

    from pipeline.fer import model as fm
    from pipeline.fer import train as ft
    from pipeline.fer.data import CLASSES, FerConfig

    cfg = parse(FerConfig, params["fer"], "fer").at_scale("smoke" if smoke else "full")
    n = n_of(FER_TRAIN, cfg.train.batch_size)
    data = Split(torch.randint(0, 256, (n, 48, 48), dtype=torch.uint8, generator=g).to(device),
                 torch.randint(0, len(CLASSES), (n,), generator=g).to(device))
    _reset(device)
    rate = _train(fm.FerCNN(cfg.model).to(device), data, F.cross_entropy, cfg.train.train_config(), amp,
                  prepare=ft.Augmenter(cfg.augment, device, 0))
    row("fer", "cnn (augmented)", rate, FER_TRAIN, cfg.train.epochs)
    del data

    from pipeline.distill import models as dm
    from pipeline.distill import train as dt
    from pipeline.distill.recipe import DistillConfig, make_views

    cfg = parse(DistillConfig, params["distill"], "distill").at_scale("smoke" if smoke else "full")
    sched = cfg.student.train
    n = n_of(10_000, max(sched.batch_size, cfg.teacher.batch))
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g).to(device)
    y = torch.randint(0, 10, (n,), generator=g).to(device)
    views = make_views(n, cfg.views, 0).to(device)
    logits = torch.randn(n, cfg.views.count, 10, generator=g).to(device)
    _reset(device)
    rate = _train(dm.MobileNetStudent(cfg.student.width, cfg.student.dropout).to(device),
                  Split(x, torch.arange(n, device=device)), dt.student_loss(0.5, 4.0), sched.train_config(), amp,
                  prepare=dt.ViewBatches(views, y, logits, 0))
    grid = len(cfg.grid.alpha) * len(cfg.grid.tau)
    row("distill", "mobilenetv2 students (b), (e) / scratch (c)", rate, CIFAR_TRAIN,
        grid * cfg.grid.epochs + 3 * sched.epochs,
        runs=f"{grid} grid runs × {cfg.grid.epochs} + (b), (c), (e) × {sched.epochs}")
    _reset(device)
    teacher = dm.ResNetTeacher(cfg.teacher.resize).to(device)
    rate = _infer(teacher, x, cfg.teacher.batch, amp)
    features = CIFAR_TRAIN * cfg.head.views + (CIFAR_ALL - CIFAR_TRAIN) * (2 if cfg.head.flip_test else 1)
    row("distill", f"resnet-50 inference at {cfg.teacher.resize}px", rate, CIFAR_TRAIN, 2 * cfg.views.count,
        runs=f"(a)'s and (d)'s logits of {cfg.views.count} views per training image (features of "
             f"{features:,} views: +{features / rate:.0f} s)")
    rows[-1]["predicted_seconds"] = round(rows[-1]["predicted_seconds"] + features / rate, 1)
    _reset(device)
    tc = cfg.finetune.train.train_config()
    rate = _train(teacher, Split(x, y), F.cross_entropy, tc, amp, prepare=dt.RandomViews(cfg.views, device, 0),
                  groups=teacher.groups(cfg.finetune.backbone_lr))
    row("distill", "resnet-50 fine-tuning (whole)", rate, CIFAR_TRAIN, cfg.finetune.train.epochs)
    del x, y, views, logits, teacher

    from pipeline.colourize import model as col
    from pipeline.colourize.config import ColourizeConfig

    cfg = parse(ColourizeConfig, params["colourize"], "colourize").at_scale("smoke" if smoke else "full")
    for name in col.MODELS:
        run = cfg.run(name)
        n = n_of(HORSES, run.batch_size)
        data = Split(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g).to(device),
                     torch.randint(0, cfg.palette.colours, (n, 32, 32), dtype=torch.uint8, generator=g).to(device))
        _reset(device)
        rate = _train(col.build(name, run).to(device), data, col.pixel_loss, run.train_config(), amp)
        sweep = getattr(cfg, f"sweep_{name}", None)
        extra = len(sweep.lr) + len(sweep.filters) + len(sweep.kernel) if sweep is not None else 0
        row("colourize", name, rate, HORSES, run.epochs * (1 + extra),
            runs=f"headline{f' + {extra} sweep runs' if extra else ''} × {run.epochs} epochs")
    return rows


def predictions(rows: list[dict]) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in rows:
        out[r["experiment"]] = round(out.get(r["experiment"], 0.0) + r["predicted_seconds"], 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--samples-scale", type=float, default=1.0,
                    help="multiplies each family's timed sample count (at least two batches)")
    ap.add_argument("--scale", choices=("full", "smoke"), default="full")
    ap.add_argument("--json", help="write the rows and predictions here")
    args = ap.parse_args(argv)
    seed_everything(0)
    device = pick_device(args.device)
    label = device_label(device)
    print(f"device: {label}; precision {autocast_dtype(device, 'auto') or 'fp32'}")
    t0 = time.perf_counter()
    rows = measure(device, args.samples_scale, args.scale == "smoke")
    synchronize(device)
    total = predictions(rows)
    for experiment, seconds in total.items():
        print(f"predicted {experiment:9s} training on {label}: {seconds / 60:8.1f} min")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": label, "rows": rows, "predicted_seconds": total,
                                               "seconds": round(time.perf_counter() - t0, 1)}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
