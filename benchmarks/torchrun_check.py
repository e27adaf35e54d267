"""One small CNN trained through the engine, plain or under torchrun: the digest of its weights.

    python -m benchmarks.torchrun_check --device cpu --out a.json
    python -m torch.distributed.run --standalone --nproc-per-node=1 -m benchmarks.torchrun_check --out b.json

With one process, DistributedDataParallel must change nothing: `make gpu-check` (step 5) runs both
and compares the digests and the loss histories.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from pipeline.core import distributed
from pipeline.core.device import pick_device, seed_everything
from pipeline.core.engine import fit
from pipeline.core.schedule import TrainConfig
from pipeline.core.split import Split


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    seed_everything(0)
    device = pick_device(args.device)
    distributed.start(device)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (2048, 1, 16, 16), dtype=torch.uint8, generator=g).to(device)
    y = torch.randint(0, 10, (2048,), generator=g).to(device)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                          nn.Flatten(), nn.Linear(128, 10)).to(device)
    cfg = TrainConfig(epochs=3, batch_size=128, lr=0.01, optimizer="sgd", momentum=0.9, monitor="train_loss",
                      mode="min")
    result = fit(model, Split(x, y), None, nn.CrossEntropyLoss(), cfg, progress=False,
                 prepare=lambda a, b, training: (a.float() / 255, b))
    digest = hashlib.sha256(b"".join(v.cpu().numpy().tobytes() for v in model.state_dict().values())).hexdigest()
    if distributed.rank() == 0:
        Path(args.out).write_text(json.dumps({"sha256": digest, "processes": distributed.world_size(),
                                              "train_loss": [h["train_loss"] for h in result.history]}) + "\n")
    distributed.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
