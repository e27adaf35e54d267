"""distill throughput as configured in params.yaml (`distill`): the teacher (ResNet-50 at
`distill.teacher.resize`) and the student (MobileNetV2 at 32×32) — inference, and training
steps through the engine (the student with its stored views and teacher logits, the teacher
fine-tuned whole with its backbone at the lower learning rate) — plus the crop/flip gather.

    python -m benchmarks.distill_throughput [--device auto] [--samples N] [--epochs 2]

Synthetic uint8 32×32 images on the device as the pipeline keeps them; random weights (speed
does not depend on them); the first epoch of each training run is a warm-up and not counted.
"""
from __future__ import annotations

import argparse
import dataclasses

import torch
import torch.nn.functional as F

from benchmarks.common import device_label, timed, training_rate
from pipeline.core.device import autocast_dtype, pick_device, seed_everything
from pipeline.core.engine import fit
from pipeline.core.params import load_params, parse
from pipeline.core.split import Split
from pipeline.distill import models as dm
from pipeline.distill import train as dt
from pipeline.distill.recipe import DistillConfig, crop_flip, make_views


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--samples", type=int, default=None, help="default: 10,000 on CUDA, 256 elsewhere")
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    seed_everything(0)
    device = pick_device(args.device)
    n = args.samples or (10_000 if device.type == "cuda" else 256)
    cfg = parse(DistillConfig, load_params()["distill"], "distill")
    amp = autocast_dtype(device, "auto")
    name = device_label(device)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g).to(device)
    y = torch.randint(0, 10, (n,), generator=g).to(device)
    views = make_views(n, cfg.views, 0).to(device)
    print(f"device: {name}; {n:,} images, precision {amp or 'fp32'}, teacher at {cfg.teacher.resize}px")

    k = torch.randint(0, cfg.views.count, (n,), generator=g).to(device)
    seconds = timed(lambda: crop_flip(x, views[torch.arange(n, device=device), k]), device, repeat=10)
    print(f"crop + flip gather    {n / seconds:14,.0f} images/s")

    student = dm.MobileNetStudent(cfg.student.width, cfg.student.dropout).to(device)
    teacher = dm.ResNetTeacher(cfg.teacher.resize).to(device)
    if device.type == "cuda":
        student = student.to(memory_format=torch.channels_last)
        teacher = teacher.to(memory_format=torch.channels_last)
    for label, model, batch in (("student", student, cfg.eval_batch), ("teacher", teacher, cfg.teacher.batch)):
        model.eval()
        rate = dm.throughput(model, x, batch, amp)
        print(f"{label} inference     {rate:14,.0f} images/s   ({sum(p.numel() for p in model.parameters()):,} "
              "parameters)")

    logits = torch.randn(n, cfg.views.count, 10, generator=g).to(device)
    sched = cfg.student.train
    tc = dataclasses.replace(sched.train_config(epochs=args.epochs + 1), monitor="train_loss")
    result = fit(student, Split(x, torch.arange(n, device=device)), None, dt.student_loss(0.5, 4.0), tc,
                 prepare=dt.ViewBatches(views, y, logits, 0), amp_dtype=amp, progress=False)
    print(f"student training      {training_rate(result.history, n):14,.0f} images/s   (distillation loss, stored views)")

    tc = dataclasses.replace(cfg.finetune.train.train_config(epochs=args.epochs + 1), monitor="train_loss")
    result = fit(teacher, Split(x, y), None, F.cross_entropy, tc, prepare=dt.RandomViews(cfg.views, device, 0),
                 amp_dtype=amp, progress=False, groups=teacher.groups(cfg.finetune.backbone_lr))
    print(f"teacher fine-tuning   {training_rate(result.history, n):14,.0f} images/s   (whole ResNet-50)")


if __name__ == "__main__":
    main()
