"""The `superres` section of params.yaml."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal, Mapping

from pipeline.core.errors import ParamError
from pipeline.core.params import bounds
from pipeline.core.schedule import TrainConfig
from pipeline.data.photos import check_name


@dataclass(frozen=True)
class ImagesConfig:
    names: tuple[str, ...] = field(metadata=bounds(min_len=1))   # trained on (pixel split 70/20/10)
    holdout: tuple[str, ...] = ()                                # never trained on, evaluated only
    size: int = field(default=128, metadata=bounds(ge=8, le=1024))   # working size, px (square)

    def validate(self, key: str) -> None:
        if self.size % 4:
            raise ParamError(f"{key}.size: must be divisible by 4 (for the 4x experiment), got {self.size}")
        for i, name in enumerate(self.names):
            check_name(name, f"{key}.names[{i}]")
        for i, name in enumerate(self.holdout):
            check_name(name, f"{key}.holdout[{i}]")


@dataclass(frozen=True)
class FeaturesConfig:
    split: tuple[float, ...] = field(default=(0.7, 0.2, 0.1), metadata=bounds(gt=0, lt=1, min_len=3, max_len=3))

    def validate(self, key: str) -> None:
        if abs(sum(self.split) - 1) > 1e-6:
            raise ParamError(f"{key}.split: train/test/validation fractions must add up to 1, got {sum(self.split):g}")


@dataclass(frozen=True)
class Variant:
    factor: Literal[2, 4]                       # upscaling factor this network is trained for
    target: Literal["pixel", "subpixel"]        # pixel: 27 -> 3 per HR pixel (the report's); subpixel: 27 -> 3*f*f
    hidden: tuple[int, ...] = field(metadata=bounds(ge=1, min_len=1))
    residual: bool = False                      # predict an offset from `base` instead of the pixels
    window: int = field(default=3, metadata=bounds(ge=3, le=9))   # low-res neighbourhood side (odd)
    channels: Literal["rgb", "each"] = "rgb"    # each: one network shared by R, G and B, one channel per row
    base: Literal["centre", "bicubic"] = "centre"   # residual: offset from the centre pixel, or from bicubic
    augment: bool = False                       # train on random flips and transposes of every patch

    def validate(self, key: str) -> None:
        if self.window % 2 == 0:
            raise ParamError(f"{key}.window: must be odd (a neighbourhood centred on its pixel), got {self.window}")
        if self.target == "pixel" and (self.window, self.channels, self.base, self.augment) != (3, "rgb", "centre",
                                                                                                False):
            raise ParamError(f"{key}: target pixel is the report's literal 27 -> 3 network; window, channels, base "
                             "and augment apply to target: subpixel")
        if self.base == "bicubic" and not self.residual:
            raise ParamError(f"{key}.base: bicubic is what a residual network corrects; set residual: true")


@dataclass(frozen=True)
class SuperresConfig:
    images: ImagesConfig
    features: FeaturesConfig
    train: TrainConfig
    variants: Mapping[str, Variant]

    def validate(self, key: str) -> None:
        if not any(v.factor == 2 for v in self.variants.values()):
            raise ParamError(f"{key}.variants: needs at least one variant with factor: 2")

    def at_scale(self, scale: str) -> "SuperresConfig":
        """Smoke scale: three small images, one hold-out, two epochs."""
        if scale == "full":
            return self
        images = dataclasses.replace(self.images, names=self.images.names[:3],
                                     holdout=self.images.holdout[:1], size=32)
        return dataclasses.replace(self, images=images, train=dataclasses.replace(self.train, epochs=2))
