"""The `theory` section of params.yaml."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from pipeline.core.params import bounds


@dataclass(frozen=True)
class DilationGrid:
    sizes: tuple[int, ...] = field(default=(9, 16, 33), metadata=bounds(ge=2, min_len=1))      # N
    kernels: tuple[int, ...] = field(default=(1, 2, 3, 5), metadata=bounds(ge=1, min_len=1))   # k
    dilations: tuple[int, ...] = field(default=(1, 2, 3), metadata=bounds(ge=1, min_len=1))    # d
    filters: int = field(default=4, metadata=bounds(ge=1))                                     # m


@dataclass(frozen=True)
class RegionsConfig:
    knots: int = field(default=11, metadata=bounds(ge=3))          # hat approximation on [0, 1]
    width: int = field(default=16, metadata=bounds(ge=1))          # random ReLU / PReLU MLP
    depth: int = field(default=3, metadata=bounds(ge=1))
    points: int = field(default=20001, metadata=bounds(ge=100))    # samples along the line


@dataclass(frozen=True)
class SymmetryConfig:
    hidden: int = field(default=8, metadata=bounds(ge=2))
    steps: int = field(default=500, metadata=bounds(ge=1))
    lr: float = field(default=0.1, metadata=bounds(gt=0))
    dropout: float = field(default=0.3, metadata=bounds(gt=0, lt=1))


@dataclass(frozen=True)
class ResidualConfig:
    width: int = field(default=32, metadata=bounds(ge=1))
    depth: int = field(default=30, metadata=bounds(ge=2))


@dataclass(frozen=True)
class TheoryConfig:
    dilation: DilationGrid = DilationGrid()
    regions: RegionsConfig = RegionsConfig()
    symmetry: SymmetryConfig = SymmetryConfig()
    residual: ResidualConfig = ResidualConfig()
    conv1d_trials: int = field(default=200, metadata=bounds(ge=1))   # random draws for the 1-D conv gradients

    def at_scale(self, scale: str) -> "TheoryConfig":
        if scale == "full":
            return self
        return dataclasses.replace(
            self, dilation=dataclasses.replace(self.dilation, sizes=self.dilation.sizes[:1]),
            regions=dataclasses.replace(self.regions, points=2001),
            symmetry=dataclasses.replace(self.symmetry, steps=50), conv1d_trials=10)
