"""The three EMNIST networks: an MLP, a CNN, and the same CNN with every k×k convolution
factorised into a k×1 then a 1×k convolution.

All three take the uint8 images (N, 28, 28) as stored on the device and standardise them
inside the network with the training split's mean and standard deviation (kept as buffers,
so a checkpoint carries its own preprocessing).

Factorising a k×k convolution from c_in to c_out channels through m middle channels replaces
k²·c_in·c_out weights by k·c_in·m + k·m·c_out. With m = min(c_in, c_out) that is never more
than 2k·c_in·c_out, so for k ≥ 3 it always saves: at c_in = c_out = c it is 2kc² instead of
k²c² (2/3 for k = 3, 2/5 for k = 5), and the multiply-adds per output pixel fall by the same
factor. No non-linearity sits between the two halves: the pair is exactly a k×k convolution
whose kernel is a sum of m separable (rank-one) kernels per output channel, a restricted
k×k convolution with fewer weights to learn.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import pandas as pd
import torch
from torch import Tensor, nn

from pipeline.core.nets import ConvBlock, Standardize, mlp_layers
from pipeline.core.params import bounds

MODELS = ("mlp", "cnn", "factorised")
PARAMETER_TOLERANCE = 0.10        # the MLP and the CNN: parameter counts within ±10 % of each other


@dataclass(frozen=True)
class MlpConfig:
    hidden: tuple[int, ...] = field(default=(896, 448), metadata=bounds(ge=1, min_len=1))
    dropout: float = field(default=0.3, metadata=bounds(ge=0, lt=1))


@dataclass(frozen=True)
class CnnConfig:
    channels: tuple[int, ...] = field(default=(64, 128, 256), metadata=bounds(ge=1, min_len=1, max_len=3))
    convs_per_stage: int = field(default=2, metadata=bounds(ge=1))
    kernel: int = field(default=3, metadata=bounds(ge=3))
    dropout: float = field(default=0.2, metadata=bounds(ge=0, lt=1))

    def validate(self, key: str) -> None:
        from pipeline.core.errors import ParamError

        if self.kernel % 2 == 0:
            raise ParamError(f"{key}.kernel: {self.kernel} is even; use an odd size so 'same' padding "
                             "keeps the image size")


class MLP(nn.Module):
    """784 -> hidden (ReLU, dropout)... -> classes."""

    def __init__(self, cfg: MlpConfig, classes: int, n_in: int = 28 * 28):
        super().__init__()
        self.standardize = Standardize()
        self.net = nn.Sequential(nn.Flatten(), *mlp_layers((n_in, *cfg.hidden, classes), cfg.dropout))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(self.standardize(x))


class CNN(nn.Module):
    """Stages of `convs_per_stage` conv blocks; 2×2 max-pool and dropout between stages; global
    average pooling, dropout and one linear layer to the classes (a small head, so that the
    convolutions hold most of the parameters and their factorisation matters)."""

    def __init__(self, cfg: CnnConfig, classes: int, factorised: bool = False):
        super().__init__()
        self.standardize = Standardize()
        layers: list[nn.Module] = []
        c_in = 1
        for s, c in enumerate(cfg.channels):
            if s:
                layers += [nn.MaxPool2d(2), nn.Dropout(cfg.dropout)]
            for _ in range(cfg.convs_per_stage):
                layers.append(ConvBlock(c_in, c, cfg.kernel, factorised))
                c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(cfg.dropout),
                                  nn.Linear(c_in, classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(self.standardize(x).unsqueeze(1)))


def build(name: Literal["mlp", "cnn", "factorised"], mlp: MlpConfig, cnn: CnnConfig, classes: int) -> nn.Module:
    if name == "mlp":
        return MLP(mlp, classes)
    return CNN(cnn, classes, factorised=name == "factorised")


def parameter_counts(mlp: MlpConfig, cnn: CnnConfig, classes: int) -> dict[str, int]:
    """Each model's trainable parameters, built on the meta device (no memory, no time)."""
    with torch.device("meta"):
        return {name: sum(p.numel() for p in build(name, mlp, cnn, classes).parameters()) for name in MODELS}


def conv_parameters(c_in: int, c_out: int, k: int) -> int:
    """Weights of a k×k convolution without bias."""
    return k * k * c_in * c_out


def factorised_parameters(c_in: int, c_out: int, k: int, middle: int | None = None) -> int:
    """Weights of k×1 (c_in -> m) then 1×k (m -> c_out), m = min(c_in, c_out) unless given."""
    m = middle or min(c_in, c_out)
    return k * c_in * m + k * m * c_out


def layer_table(cnn: nn.Module, factorised: nn.Module, image: tuple[int, int] = (28, 28)) -> pd.DataFrame:
    """Layer by layer, the CNN and its factorised twin: each convolution's shape, parameters and
    multiply-adds per image (from the modules, by a forward pass with hooks), then batch norm, the
    classifier head and the total."""
    rows = []
    conv_stats = [_conv_stats(m, image) for m in (cnn, factorised)]
    for i, (full, fact) in enumerate(zip(*conv_stats), 1):
        rows.append({"layer": f"conv {i}", "shape": full["shape"], "output": full["output"],
                     "params": full["params"], "params_factorised": fact["params"],
                     "mult_adds": full["mult_adds"], "mult_adds_factorised": fact["mult_adds"]})
    for label, kind in (("batch norm", nn.BatchNorm2d), ("classifier", nn.Linear)):
        counts = [sum(p.numel() for mod in m.modules() if isinstance(mod, kind) for p in mod.parameters())
                  for m in (cnn, factorised)]
        rows.append({"layer": label, "params": counts[0], "params_factorised": counts[1]})
    table = pd.DataFrame(rows)
    total = {"layer": "total", "params": int(table["params"].sum()),
             "params_factorised": int(table["params_factorised"].sum()),
             "mult_adds": int(table["mult_adds"].sum()), "mult_adds_factorised": int(table["mult_adds_factorised"].sum())}
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    table["params_ratio"] = table["params_factorised"] / table["params"]
    return table.astype({"mult_adds": "Int64", "mult_adds_factorised": "Int64"})


def _conv_stats(model: nn.Module, image: tuple[int, int]) -> list[dict]:
    """Per ConvBlock: 'c_in→c_out k×k', output size, weights, multiply-adds (weights × output pixels)."""
    stats, hooks = [], []

    def record(block: ConvBlock, inputs, output):
        convs = [block.conv] if isinstance(block.conv, nn.Conv2d) else list(block.conv)
        first, last = convs[0], convs[-1]
        k = max(max(c.kernel_size) for c in convs)
        pixels = output.shape[-2] * output.shape[-1]
        stats.append({"shape": f"{first.in_channels}→{last.out_channels}, {k}×{k}",
                      "output": f"{last.out_channels}×{output.shape[-2]}×{output.shape[-1]}",
                      "params": sum(c.weight.numel() for c in convs),
                      "mult_adds": sum(c.weight.numel() for c in convs) * pixels})

    for m in model.modules():
        if isinstance(m, ConvBlock):
            hooks.append(m.register_forward_hook(record))
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *image, dtype=torch.uint8, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    return stats


@torch.no_grad()
def predict(model: nn.Module, images: Tensor, batch_size: int, amp_dtype=None) -> tuple[Tensor, float]:
    """Argmax predictions for all `images` and the throughput (images per second) of that pass."""
    from pipeline.core.device import synchronize
    from pipeline.core.inference import predict as batched

    model.eval()
    synchronize(images.device)
    t0 = time.perf_counter()
    pred = batched(model, images, batch_size, amp_dtype).argmax(1)
    synchronize(images.device)
    return pred, len(images) / (time.perf_counter() - t0)
