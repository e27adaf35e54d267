"""colourize's parameters (params.yaml `colourize:`): the palette, the three headline runs and the sweeps."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from pipeline.core.errors import ParamError
from pipeline.core.params import bounds
from pipeline.core.schedule import Schedules

MODELS = ("cnn", "unet", "residual")
SWEEP_KEYS = ("filters", "lr", "kernel")


@dataclass(frozen=True)
class Palette:
    colours: int = field(default=24, metadata=bounds(ge=2, le=256))
    sample: int = field(default=200_000, metadata=bounds(ge=100))   # training pixels k-means runs on (seeded)
    iterations: int = field(default=50, metadata=bounds(ge=1))


@dataclass(frozen=True)
class Run(Schedules):
    SCHEDULE: ClassVar[dict] = {"monitor": "val_accuracy", "mode": "max"}
    """One training run's settings (the report's defaults). The kept model is the epoch with the
    best validation pixel accuracy; the metrics give that epoch's figures and the last one's."""
    filters: int = field(default=32, metadata=bounds(ge=1))       # NF
    kernel: int = field(default=3, metadata=bounds(ge=1, le=15))
    lr: float = field(default=0.001, metadata=bounds(gt=0))
    epochs: int = field(default=30, metadata=bounds(ge=1))
    batch_size: int = field(default=100, metadata=bounds(ge=1))
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    weight_decay: float = field(default=0.0, metadata=bounds(ge=0))
    schedule: Literal["constant", "cosine"] = "constant"           # the learning rate per optimiser step
    blocks: int = field(default=1, metadata=bounds(ge=1, le=8))     # residual net only: blocks per level
    levels: int = field(default=2, metadata=bounds(ge=0, le=3))     # residual net only: halvings of 32×32

    def validate(self, key: str) -> None:
        if self.kernel % 2 == 0:
            raise ParamError(f"{key}.kernel: {self.kernel} is even; padding k//2 keeps the size only for odd "
                             "kernels, choose 3, 5, 7 …")


@dataclass(frozen=True)
class Sweep:
    """The values one sweep tries; every other setting is the model's headline run's."""
    filters: tuple[int, ...] = field(default=(16, 32, 48, 64, 80, 96, 128), metadata=bounds(ge=1))
    lr: tuple[float, ...] = field(default=(1.0, 0.1, 0.01, 0.001, 0.0001, 0.00001), metadata=bounds(gt=0))
    kernel: tuple[int, ...] = field(default=(3, 5, 7), metadata=bounds(ge=1, le=15))


@dataclass(frozen=True)
class ColourizeConfig:
    palette: Palette = field(default_factory=Palette)
    cnn: Run = field(default_factory=Run)
    unet: Run = field(default_factory=Run)
    residual: Run = field(default_factory=lambda: Run(epochs=25, schedule="cosine", blocks=2))
    sweep_cnn: Sweep = field(default_factory=Sweep)
    sweep_unet: Sweep = field(default_factory=lambda: Sweep(lr=(10.0, 1.0, 0.1, 0.01, 0.001, 0.0001)))
    show: int = field(default=8, metadata=bounds(ge=1, le=64))     # validation horses drawn colourised
    train_limit: int | None = None                                  # first N horses of each split (None: all)
    val_limit: int | None = None

    def validate(self, key: str) -> None:
        for name in ("sweep_cnn", "sweep_unet"):
            for k in getattr(self, name).kernel:
                if k % 2 == 0:
                    raise ParamError(f"{key}.{name}.kernel: {k} is even; choose odd kernel sizes")

    def run(self, model: str) -> Run:
        return getattr(self, model)

    def at_scale(self, scale: str) -> "ColourizeConfig":
        if scale == "full":
            return self

        def short(r: Run) -> Run:
            return dataclasses.replace(r, epochs=min(r.epochs, 2))

        return dataclasses.replace(self, palette=dataclasses.replace(self.palette, sample=min(self.palette.sample, 20_000),
                                                                    iterations=min(self.palette.iterations, 10)),
                                   cnn=short(self.cnn), unet=short(self.unet), residual=short(self.residual),
                                   train_limit=256, val_limit=128, show=min(self.show, 4))

    def sweep_point(self, model: str, key: str, text: str) -> Run:
        """The run of one sweep point: `model`'s headline run with `key` (filters, lr or kernel)
        set to `text`, which must be one of colourize.sweep_<model>.<key>."""
        if model not in ("cnn", "unet") or key not in SWEEP_KEYS:
            raise ParamError(f"colourize sweep {model} {key}: sweeps exist for cnn and unet over "
                             f"{', '.join(SWEEP_KEYS)}")
        values = getattr(getattr(self, f"sweep_{model}"), key)
        try:
            value = float(text) if key == "lr" else int(text)
        except ValueError:
            raise ParamError(f"colourize sweep {model} {key}: {text!r} is not a number") from None
        if value not in values:
            raise ParamError(f"colourize sweep {model} {key} {text}: not in colourize.sweep_{model}.{key} "
                             f"{list(values)}")
        return dataclasses.replace(self.run(model), **{key: value})
