"""colourize's data: CIFAR-10's horses, the k-means palette and every pixel's colour class."""
from __future__ import annotations

import torch
from torch import Tensor

from pipeline.colourize import model as col
from pipeline.colourize.config import Palette
from pipeline.core.errors import DataError


def horses(data: dict, cfg: Palette, train_limit: int | None, val_limit: int | None, seed: int, device) -> dict:
    """Prepared CIFAR-10 -> its horses (train: the training images', val: the test images'), the
    palette k-means finds on the training horses' pixels and every pixel's nearest colour (uint8)."""
    out = {}
    for name, split, limit in (("train", "train", train_limit), ("val", "test", val_limit)):
        x = data[f"{split}_x"][data[f"{split}_y"] == col.HORSE][:limit]
        if len(x) == 0:
            raise DataError(f"prepared CIFAR-10: no horses (class {col.HORSE}) in the {split} split")
        out[f"{name}_x"] = x
    palette = col.build_palette(out["train_x"].to(device), cfg, seed)
    for name in ("train", "val"):
        out[f"{name}_y"] = col.nearest_colour(out[f"{name}_x"].to(device), palette).cpu()
    out["palette"] = palette.cpu()
    return out


def colour_shares(classes: Tensor, colours: int) -> Tensor:
    """The share of pixels of each palette colour."""
    share = torch.bincount(classes.flatten().long(), minlength=colours).float()
    return share / share.sum()
