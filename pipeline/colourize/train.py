"""Training one colourisation run, and the palette data every run trains on."""
from __future__ import annotations

from pathlib import Path

import torch

from pipeline.colourize import model as col
from pipeline.colourize.config import Run
from pipeline.core.engine import FitResult, fit
from pipeline.core.errors import TrainingDiverged
from pipeline.core.split import Split


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
