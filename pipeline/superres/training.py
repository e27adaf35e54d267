"""Training one super-resolution variant through the shared engine."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from pipeline.core.engine import FitResult, evaluate, fit
from pipeline.core.schedule import TrainConfig
from pipeline.core.split import Split
from pipeline.superres.config import Variant
from pipeline.superres.features import literal_index, literal_samples
from pipeline.superres.models import build_model


def to_unit(x: Tensor, y: Tensor, training: bool) -> tuple[Tensor, Tensor]:
    """uint8 features and targets -> float32 in [0, 1], on the device, per batch."""
    return x.float().div_(255), y.float().div_(255)


def variant_splits(samples: dict, variant: Variant, device: torch.device) -> dict[str, Split]:
    """train / test / val Splits of one factor's samples, uint8 on the device."""
    block = samples[variant.factor]
    x, y = block["x"].to(device), block["y"].to(device)
    index = {k: v.to(device) for k, v in block["split"].items()}
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
                  amp_dtype=None, on_epoch=None, resume_dir=None) -> TrainedVariant:
    torch.manual_seed(seed)
    splits = variant_splits(samples, variant, device)
    model = build_model(variant.factor, variant.target, variant.hidden, variant.residual).to(device)
    loss = nn.MSELoss()
    result = fit(model, splits["train"], splits["val"], loss, cfg, seed=seed, prepare=to_unit,
                 amp_dtype=amp_dtype, on_epoch=on_epoch, resume_dir=resume_dir)
    model.load_state_dict(result.best_state)
    test = evaluate(model, splits["test"], loss, 8192, to_unit, prefix="test_")
    return TrainedVariant(model, result, test, {k: len(v) for k, v in splits.items()})

