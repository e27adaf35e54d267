"""The top-level keys of params.yaml that every stage shares."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pipeline.core.errors import ParamError
from pipeline.core.params import bounds, parse

GLOBAL_KEYS = ("seed", "device", "precision", "deterministic", "compile", "memory_format", "distributed", "scale", "data")


@dataclass(frozen=True)
class DataSettings:
    mirror: str = ""        # replaces scheme+host of every download URL; "" = official hosts


@dataclass(frozen=True)
class DistributedSettings:
    nproc: int = field(default=1, metadata=bounds(ge=1))   # processes (GPUs) per distributed stage


@dataclass(frozen=True)
class Settings:
    seed: int = field(default=0, metadata=bounds(ge=0))
    device: str = "auto"    # auto | cpu | cuda | cuda:N | mps
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    deterministic: bool = True      # bit-repeatable kernels; false lets cuDNN pick its fastest
    compile: bool = False
    memory_format: Literal["auto", "channels_last", "contiguous"] = "auto"
    distributed: DistributedSettings = DistributedSettings()
    scale: Literal["full", "smoke"] = "full"
    data: DataSettings = DataSettings()

    def validate(self, key: str) -> None:
        d = self.device
        if not (d in ("auto", "cpu", "cuda", "mps") or (d.startswith("cuda:") and d[5:].isdigit())):
            raise ParamError(f"device: {d!r} is not allowed; choose one of auto, cpu, cuda, cuda:N, mps")


def settings_from(params: dict) -> Settings:
    """The shared settings; experiment sections are parsed by their own stage."""
    return parse(Settings, {k: params[k] for k in GLOBAL_KEYS if k in params}, key="")
