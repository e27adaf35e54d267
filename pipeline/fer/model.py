"""The FER-2013 network, its on-device augmentation, training and prediction.

A VGG-style CNN: stages of 3×3 conv-BN-ReLU blocks, each stage ending in a 2×2 max-pool, then
the flattened last feature map through dropout, one hidden layer and dropout to the 7 classes.
Dropout between stages is off by default: there it feeds the next batch norm, whose running
statistics then describe the dropped-out activations rather than the ones seen at test time
(on a small test net, 0.25 there held validation accuracy at chance while training accuracy
climbed); in the head nothing normalises after it. It takes
the uint8 faces (N, 48, 48) as stored on the device and standardises them inside (the training
split's statistics as buffers, so a checkpoint carries its own preprocessing).

Augmentation runs on the device, a whole batch at once: one random affine map per image
(horizontal flip, rotation, zoom, shift — a shift with zoom is a random crop) applied with
`grid_sample`, then an optional erased rectangle per image. Nothing per-sample in Python.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.core.engine import FitResult, fit
from pipeline.core.errors import DataError
from pipeline.core.nets import ConvBlock, Standardize, mlp_layers
from pipeline.core.split import Split
from pipeline.fer.data import CLASSES, SIZE, FerAugment, FerNet, FerTrain


class FerCNN(nn.Module):
    def __init__(self, cfg: FerNet, classes: int = len(CLASSES), size: int = SIZE):
        super().__init__()
        self.standardize = Standardize()
        layers: list[nn.Module] = []
        c_in = 1
        for c in cfg.channels:
            for _ in range(cfg.convs_per_stage):
                layers.append(ConvBlock(c_in, c, 3, factorised=False))
                c_in = c
            layers.append(nn.MaxPool2d(2))
            if cfg.dropout > 0:
                layers.append(nn.Dropout(cfg.dropout))
        self.features = nn.Sequential(*layers)
        side = size >> len(cfg.channels)
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(cfg.head_dropout),
                                  *mlp_layers((c_in * side * side, cfg.hidden, classes), cfg.head_dropout))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(self.standardize(x).unsqueeze(1)))

    def blocks(self) -> list[ConvBlock]:
        return [m for m in self.features if isinstance(m, ConvBlock)]




class Augmenter:
    """The engine's `prepare` hook: random affine (+ erase) on training batches, identity otherwise.
    Its own generator on the device makes the draws reproducible from the seed."""

    def __init__(self, cfg: FerAugment, device: torch.device, seed: int):
        self.cfg = cfg
        self.gen = torch.Generator(device=device).manual_seed(seed + 1)

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


@torch.no_grad()
def probabilities(model: nn.Module, images: Tensor, batch_size: int = 1024, tta: bool = False,
                  amp_dtype=None) -> Tensor:
    """Class probabilities (N, classes) of uint8 faces; with `tta` the mean of the face's and its
    mirror image's."""
    from pipeline.core.engine import predict

    if len(images) == 0:
        return torch.empty(0, len(CLASSES), device=images.device)
    model.eval()
    if tta:
        return predict(lambda x: (model(x).float().softmax(1) + model(x.flip(-1)).float().softmax(1)) / 2,
                       images, batch_size, amp_dtype)
    return predict(lambda x: model(x).float().softmax(1), images, batch_size, amp_dtype)


def save(model: FerCNN, cfg: FerNet, path: Path, **extra) -> None:
    from pipeline.core.files import atomic_torch_save

    atomic_torch_save({"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                       "config": dataclasses.asdict(cfg), "classes": CLASSES, **extra}, path)


def load(path: Path, device: torch.device | str = "cpu") -> tuple[FerCNN, dict]:
    """A trained FER model (eval mode, on `device`) and its checkpoint's other entries."""
    from pipeline.core.params import parse

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no trained FER model yet; run `dvc repro fer_train` first (or pass --model)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=False)
        model = FerCNN(parse(FerNet, blob["config"], key="config"), len(blob["classes"]))
        model.load_state_dict(blob["state_dict"])
    except Exception as exc:  # noqa: BLE001 - whatever went wrong, the file is not a usable checkpoint
        raise DataError(f"{path}: not a FER model checkpoint ({exc.__class__.__name__}); "
                        "run `dvc repro fer_train` to write one") from None
    return model.to(device).eval(), {k: v for k, v in blob.items() if k != "state_dict"}
