"""Training one colourisation run, and the palette data every run trains on."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from pipeline.colourize import model as col
from pipeline.colourize.config import Palette, Run
from pipeline.core.engine import FitResult, fit
from pipeline.core.errors import DataError, TrainingDiverged
from pipeline.core.split import Split


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


def train_run(model_name: str, run: Run, train: Split, val: Split, colours: int, *, seed: int, amp_dtype=None,
              on_epoch=None, resume_dir: Path | None = None, sweep: bool = False,
              ) -> tuple[torch.nn.Module, FitResult | None, str | None]:
    """One run: (model, fit result, None); a sweep point whose loss diverges (the large learning
    rates do) gives (model, None, the reason) — recorded, not failed; a headline run raises."""
    torch.manual_seed(seed)
    model = col.build(model_name, run, colours).to(train.inputs.device)
    try:
        out = fit(model, train, val, col.pixel_loss, run.train_config(), seed=seed, metrics=col.pixel_accuracy,
                  amp_dtype=amp_dtype, on_epoch=on_epoch, resume_dir=resume_dir)
    except TrainingDiverged as exc:
        if not sweep:
            raise
        return model, None, str(exc)
    return model, out, None
