"""Training one EMNIST model: the splits on the device and the shared recipe."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from pipeline.core.engine import FitResult, fit
from pipeline.core.errors import DataError
from pipeline.core.scores import accuracy, cross_entropy
from pipeline.core.split import Split
from pipeline.emnist.data import EmnistConfig, EmnistTrain
from pipeline.emnist.models import build


def splits(data: dict, t: EmnistTrain, device: torch.device) -> dict[str, Split]:
    """train / val (the seeded split of NIST's train) and test, uint8 images on `device`, cut to
    the configured limits (None: all)."""
    out = {}
    for name, idx in (("train", data["train_idx"][:t.train_limit]), ("val", data["val_idx"][:t.val_limit])):
        out[name] = Split(data["train_x"][idx].to(device), data["train_y"][idx].to(device))
    out["test"] = Split(data["test_x"][:t.test_limit].to(device), data["test_y"][:t.test_limit].to(device))
    for name, split in out.items():
        if len(split) == 0:
            raise DataError(f"emnist {name} split is empty; check emnist.train.{name}_limit and the prepared data")
    return out


def train_model(name: str, cfg: EmnistConfig, data: dict[str, Split], classes: int, *, seed: int,
                amp_dtype=None, on_epoch=None, resume_dir: Path | None = None,
                snapshot_epochs: tuple[int, ...] = ()) -> tuple[nn.Module, FitResult]:
    """Build `name`, set its input statistics from the training split, train with the shared
    hyper-parameters, and return it holding the best epoch's weights (by validation accuracy)."""
    torch.manual_seed(seed)
    device = data["train"].inputs.device
    model = build(name, cfg.mlp, cfg.cnn, classes).to(device)
    model.standardize.fit(data["train"].inputs)
    out = fit(model, data["train"], data["val"], cross_entropy, cfg.train.train_config(), seed=seed,
              metrics=accuracy, amp_dtype=amp_dtype, on_epoch=on_epoch, resume_dir=resume_dir,
              snapshot_epochs=snapshot_epochs)
    model.load_state_dict(out.best_state)
    return model, out
