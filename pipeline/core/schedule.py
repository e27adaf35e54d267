"""The training schedule: epochs, batch, optimiser, learning-rate schedule, accumulation and the
best-epoch rule. Every experiment's params section carries these under TrainConfig's own field
names, and `Schedules` builds the TrainConfig from them. Plain settings, apart from the engine that
runs them, so a config can name them without importing the training loop."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from pipeline.core.errors import ParamError
from pipeline.core.params import bounds


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = field(metadata=bounds(ge=1))
    batch_size: int = field(metadata=bounds(ge=1))              # samples per optimiser step
    lr: float = field(metadata=bounds(gt=0))
    weight_decay: float = field(default=0.0, metadata=bounds(ge=0))
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    momentum: float = field(default=0.9, metadata=bounds(ge=0, lt=1))  # sgd only
    schedule: Literal["constant", "cosine"] = "constant"        # per optimiser step
    accumulate: int = field(default=1, metadata=bounds(ge=1))   # micro-batches per step
    monitor: str = "val_loss"       # history key picking the best epoch; "last" keeps the final one
    mode: Literal["min", "max"] = "min"

    def validate(self, key: str) -> None:
        if not (self.monitor in ("train_loss", "last") or self.monitor.startswith("val_")):
            raise ParamError(f"{key}.monitor: {self.monitor!r} is not a history key; use train_loss, "
                             "val_loss, val_<metric> or last")
        if self.accumulate > self.batch_size:
            raise ParamError(f"{key}.accumulate: {self.accumulate} micro-batches cannot split a batch of "
                             f"{self.batch_size}; use at most batch_size")


def schedule_from(section, **fixed) -> TrainConfig:
    """A TrainConfig from the fields of a params section that carry TrainConfig's names (epochs,
    batch_size, lr, weight_decay, optimizer, momentum, schedule, …); `fixed` sets what the
    experiment decides rather than its params (the best-epoch rule, a batch size from a sweep)."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(fixed) - names
    if unknown:
        raise TypeError(f"schedule_from: {sorted(unknown)} are not TrainConfig fields")
    values = {f.name: getattr(section, f.name) for f in dataclasses.fields(section) if f.name in names}
    return TrainConfig(**{**values, **fixed})


class Schedules:
    """A params section with schedule fields named as TrainConfig's: `train_config()` builds its
    TrainConfig, with the class's SCHEDULE (what the experiment fixes) and any non-None overrides."""
    SCHEDULE: ClassVar[dict] = {}

    def train_config(self, **overrides) -> TrainConfig:
        return schedule_from(self, **{**self.SCHEDULE, **{k: v for k, v in overrides.items() if v is not None}})
