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
from pathlib import Path

import torch
from torch import Tensor, nn

from pipeline.core.errors import DataError
from pipeline.core.nets import ConvBlock, Standardize, mlp_layers
from pipeline.fer.data import CLASSES, SIZE, FerNet


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


@torch.no_grad()
def probabilities(model: nn.Module, images: Tensor, batch_size: int = 1024, tta: bool = False,
                  amp_dtype=None) -> Tensor:
    """Class probabilities (N, classes) of uint8 faces; with `tta` the mean of the face's and its
    mirror image's."""
    from pipeline.core.inference import predict

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
