"""batch_size's parameters (params.yaml `batch_size:`)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from pipeline.core.params import bounds
from pipeline.core.schedule import Schedules


@dataclass(frozen=True)
class AccumulationConfig:
    batch: int = field(default=64, metadata=bounds(ge=2))        # the batch that "does not fit"
    micro_batch: int = field(default=2, metadata=bounds(ge=1))   # the batch that does
    steps: int = field(default=300, metadata=bounds(ge=1))       # optimiser steps trained both ways
    memory_batches: tuple[int, ...] = field(default=(2, 8, 32, 128, 512), metadata=bounds(ge=1, min_len=1))

    def validate(self, key: str) -> None:
        from pipeline.core.errors import ParamError

        if self.batch % self.micro_batch:
            raise ParamError(f"{key}.batch: {self.batch} is not a multiple of micro_batch {self.micro_batch}")
        bad = [b for b in self.memory_batches if b % self.micro_batch]
        if bad:
            raise ParamError(f"{key}.memory_batches: {bad} are not multiples of micro_batch {self.micro_batch}")


@dataclass(frozen=True)
class BatchSizeConfig(Schedules):
    SCHEDULE: ClassVar[dict] = {"monitor": "last"}           # the final epoch's weights are kept
    accumulation: AccumulationConfig
    sizes: tuple[int, ...] = field(default=(64, 256, 1024), metadata=bounds(ge=1, min_len=1))
    hidden: tuple[int, ...] = field(default=(256, 128), metadata=bounds(ge=1, min_len=1))
    epochs: int = field(default=10, metadata=bounds(ge=1))
    lr: float = field(default=1e-3, metadata=bounds(gt=0))
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    weight_decay: float = field(default=0.0, metadata=bounds(ge=0))
    train_limit: int | None = None     # first N training images (None: all); smoke sets it
    test_limit: int | None = None

    def at_scale(self, scale: str) -> "BatchSizeConfig":
        if scale == "full":
            return self
        acc = dataclasses.replace(self.accumulation, steps=min(self.accumulation.steps, 8))
        return dataclasses.replace(self, epochs=2, train_limit=1024, test_limit=512, accumulation=acc)
