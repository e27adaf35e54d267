"""FER model throughput as configured in params.yaml (`fer`): on-device augmentation alone,
training (augmentation included), inference with and without the mirror average, and the live
demo's frames per second on a 640×480 frame holding one face.

    python -m benchmarks.fer_throughput [--device auto] [--samples N] [--epochs 2]

Synthetic uint8 48×48 faces on the device as the pipeline keeps them; the first epoch is a
warm-up and is not counted.
"""
from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.common import device_label, timed, training_rate
from pipeline.core.device import autocast_dtype, pick_device, seed_everything
from pipeline.core.engine import fit
from pipeline.core.params import load_params, parse
from pipeline.core.split import Split
from pipeline.fer import demo as fer_demo
from pipeline.fer import model as fm
from pipeline.fer import train as ft
from pipeline.fer.data import CLASSES, FerConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--samples", type=int, default=None, help="default: 28,709 (FER-2013's train) on CUDA, 1,024 elsewhere")
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()
    seed_everything(0)
    device = pick_device(args.device)
    n = args.samples or (28_709 if device.type == "cuda" else 1_024)
    cfg = parse(FerConfig, load_params()["fer"], "fer")
    amp = autocast_dtype(device, "auto")
    name = device_label(device)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 48, 48), dtype=torch.uint8, generator=g).to(device)
    y = torch.randint(0, len(CLASSES), (n,), generator=g).to(device)
    print(f"device: {name}; {n:,} faces, batch {cfg.train.batch_size}, precision {amp or 'fp32'}")

    gen = torch.Generator(device=device).manual_seed(0)
    batch = x[:cfg.train.batch_size]
    seconds = timed(lambda: ft.augment(batch, cfg.augment, gen), device, repeat=20)
    print(f"augmentation      {cfg.train.batch_size / seconds:14,.0f} faces/s")

    model = fm.FerCNN(cfg.model).to(device)
    tc = dataclasses.replace(cfg.train.train_config(), epochs=args.epochs + 1, monitor="train_loss", mode="min")
    result = fit(model, Split(x, y), None, F.cross_entropy, tc, prepare=ft.Augmenter(cfg.augment, device, 0),
                 amp_dtype=amp, progress=False)
    rate = training_rate(result.history, n)
    print(f"training          {rate:14,.0f} faces/s   ({sum(p.numel() for p in model.parameters()):,} parameters)")
    for tta in (False, True):
        seconds = timed(lambda: fm.probabilities(model, x, cfg.train.eval_batch, tta, amp), device, repeat=2)
        print(f"inference{' + mirror' if tta else '         '} {n / seconds:14,.0f} faces/s")

    import cv2
    from skimage import data as skdata

    frame = cv2.resize(np.ascontiguousarray(skdata.astronaut()[..., ::-1]), (480, 480))
    frame = np.pad(frame, ((0, 0), (80, 80), (0, 0)))                      # 640×480
    detector = fer_demo.FaceDetector()

    def one_frame():
        grey = fer_demo.to_grey(frame)
        boxes = detector(grey)
        crops = torch.from_numpy(fer_demo.face_crops(grey, boxes)).to(device)
        probs = fm.probabilities(model, crops, tta=cfg.train.tta).cpu().numpy()
        return fer_demo.draw(frame, boxes, probs, CLASSES)

    seconds = timed(one_frame, device, repeat=20)
    print(f"demo frame        {1 / seconds:14,.1f} frames/s (640×480, one face: detect, classify, draw)")


if __name__ == "__main__":
    main()
