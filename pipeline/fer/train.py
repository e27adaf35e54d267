"""Training the FER CNN: the splits on the device, augmentation on the device, the training recipe."""
from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.core.distributed import rank_seed
from pipeline.core.engine import FitResult, fit
from pipeline.core.errors import DataError
from pipeline.core.split import Split
from pipeline.fer.data import FerAugment, FerNet, FerTrain
from pipeline.fer.model import FerCNN


class Augmenter:
    """The engine's `prepare` hook: random affine (+ erase) on training batches, identity otherwise.
    Its own generator on the device makes the draws reproducible from the seed."""

    def __init__(self, cfg: FerAugment, device: torch.device, seed: int):
        self.cfg = cfg
        self.gen = torch.Generator(device=device).manual_seed(rank_seed(seed) + 1)   # per rank under torchrun

    def __call__(self, x: Tensor, y: Tensor, training: bool) -> tuple[Tensor, Tensor]:
        if not training:
            return x, y
        return augment(x, self.cfg, self.gen), y


def augment(x: Tensor, cfg: FerAugment, gen: torch.Generator) -> Tensor:
    """(N, H, W) uint8 or float -> (N, H, W) float in pixel units (0..255), each image with its
    own flip / rotation / zoom / shift (bilinear, zeros outside) and maybe an erased rectangle."""
    n, h, w = x.shape
    dev = x.device

    def uniform(lo: float, hi: float) -> Tensor:
        return lo + (hi - lo) * torch.rand(n, device=dev, generator=gen)

    angle = uniform(-cfg.rotate, cfg.rotate) * (math.pi / 180)
    scale = 1 / uniform(1 - cfg.zoom, 1 + cfg.zoom)             # > 1 zooms in: the grid samples a smaller area
    flip = torch.where(torch.rand(n, device=dev, generator=gen) < 0.5, -1.0, 1.0) if cfg.flip \
        else torch.ones(n, device=dev)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos * flip, -sin, 2 * uniform(-cfg.shift, cfg.shift)], 1),
                         torch.stack([sin * flip, cos, 2 * uniform(-cfg.shift, cfg.shift)], 1)], 1)
    img = x.float().unsqueeze(1)
    grid = F.affine_grid(theta, (n, 1, h, w), align_corners=False)
    out = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False).squeeze(1)
    if cfg.erase > 0:
        side_h, side_w = uniform(0.15, 0.4) * h, uniform(0.15, 0.4) * w
        cy, cx = uniform(0, h), uniform(0, w)
        yy = torch.arange(h, device=dev).view(1, h, 1)
        xx = torch.arange(w, device=dev).view(1, 1, w)
        inside = (((yy - cy.view(n, 1, 1)).abs() < side_h.view(n, 1, 1) / 2)
                  & ((xx - cx.view(n, 1, 1)).abs() < side_w.view(n, 1, 1) / 2))
        chosen = (torch.rand(n, device=dev, generator=gen) < cfg.erase).view(n, 1, 1)
        out = torch.where(inside & chosen, out.mean((1, 2), keepdim=True), out)
    return out


def splits(data: dict, t: FerTrain, device: torch.device) -> dict[str, Split]:
    out = {}
    for name, limit in (("train", t.train_limit), ("val", t.val_limit), ("test", t.test_limit)):
        out[name] = Split(data[f"{name}_x"][:limit].to(device), data[f"{name}_y"][:limit].to(device))
        if len(out[name]) == 0:
            raise DataError(f"fer {name} split is empty; check fer.train.{name}_limit and the prepared data")
    return out


def train_model(net: FerNet, aug: FerAugment, t: FerTrain, data: dict[str, Split], *, seed: int, amp_dtype=None,
                on_epoch=None, resume_dir: Path | None = None) -> tuple[FerCNN, FitResult]:
    """Train with augmentation, keep the best epoch by validation accuracy (the test split is
    evaluated every epoch for the curves only) and return the model holding that epoch's weights."""
    from pipeline.core.scores import accuracy

    torch.manual_seed(seed)
    device = data["train"].inputs.device
    model = FerCNN(net).to(device)
    model.standardize.fit(data["train"].inputs)

    def loss(out: Tensor, y: Tensor) -> Tensor:
        return F.cross_entropy(out, y, label_smoothing=t.label_smoothing)

    out = fit(model, data["train"], data["val"], loss, t.train_config(), seed=seed,
              prepare=Augmenter(aug, device, seed), metrics=accuracy, amp_dtype=amp_dtype, on_epoch=on_epoch,
              resume_dir=resume_dir, watch={"test": data["test"]})
    model.load_state_dict(out.best_state)
    return model, out
