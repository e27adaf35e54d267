"""Training one super-resolution variant through the shared engine."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pipeline.core.engine import FitResult, evaluate, fit
from pipeline.core.schedule import TrainConfig
from pipeline.core.split import Split
from pipeline.superres.config import Variant
from pipeline.superres.features import (
    dihedral_index,
    downsample,
    literal_index,
    literal_samples,
    subpixel_targets,
    variant_inputs,
)
from pipeline.superres.models import variant_model


def to_unit(x: Tensor, y: Tensor, training: bool) -> tuple[Tensor, Tensor]:
    """uint8 features and targets -> float32 in [0, 1], on the device, per batch."""
    return x.float().div_(255), y.float().div_(255)


def augmented(variant: Variant, device: torch.device):
    """A prepare hook that also gives each training row one of the 8 flips/transposes, drawn at random."""
    x_index, y_index = (t.to(device) for t in dihedral_index(variant.factor, variant.window, variant.channels,
                                                              variant.base))

    def prepare(x: Tensor, y: Tensor, training: bool) -> tuple[Tensor, Tensor]:
        if training:
            t = torch.randint(0, 8, (x.shape[0],), device=x.device)
            x, y = x.gather(1, x_index[t]), y.gather(1, y_index[t])
        return to_unit(x, y, training)
    return prepare


def variant_splits(samples: dict, variant: Variant, device: torch.device, hr: Tensor | None = None
                   ) -> dict[str, Split]:
    """train / test / val Splits of one factor's samples, uint8 on the device. A variant wider than the
    report's 3x3 RGB rows builds its rows from the photographs `hr`, split by the same positions."""
    block = samples[variant.factor]
    index = {k: v.to(device) for k, v in block["split"].items()}
    if (variant.window, variant.channels, variant.base) == (3, "rgb", "centre"):
        x, y = block["x"].to(device), block["y"].to(device)
    else:
        f = variant.factor
        x = variant_inputs(downsample(hr, f), f, variant.window, variant.channels, variant.base).to(device)
        y = subpixel_targets(hr, f).to(device)
        if variant.channels == "each":              # rows p*3 + c: a position's three channels stay in its split
            y = y.reshape(-1, f * f)
            index = {k: (v[:, None] * 3 + torch.arange(3, device=device)).reshape(-1) for k, v in index.items()}
    if variant.target == "pixel":
        x, y = literal_samples(x, y, variant.factor)
        index = {k: literal_index(v, variant.factor) for k, v in index.items()}
    return {k: Split(x[v], y[v]) for k, v in index.items()}


@dataclass
class TrainedVariant:
    model: nn.Module
    fit: FitResult
    test: dict[str, float]
    sizes: dict[str, int]


def train_variant(samples: dict, variant: Variant, cfg: TrainConfig, device: torch.device, seed: int,
                  amp_dtype=None, on_epoch=None, resume_dir=None, hr: Tensor | None = None) -> TrainedVariant:
    torch.manual_seed(seed)
    splits = variant_splits(samples, variant, device, hr)
    model = variant_model(variant).to(device)
    loss = nn.MSELoss()
    prepare = augmented(variant, device) if variant.augment else to_unit
    result = fit(model, splits["train"], splits["val"], loss, cfg, seed=seed, prepare=prepare,
                 amp_dtype=amp_dtype, on_epoch=on_epoch, resume_dir=resume_dir)
    model.load_state_dict(result.best_state)
    test = evaluate(model, splits["test"], loss, 8192, to_unit, prefix="test_")
    return TrainedVariant(model, result, test, {k: len(v) for k, v in splits.items()})

