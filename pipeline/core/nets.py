"""Layer stacks shared by the experiments' networks."""
from __future__ import annotations

import torch
from torch import Tensor, nn


def mlp_layers(sizes: tuple[int, ...], dropout: float = 0.0) -> list[nn.Module]:
    """Linear layers through `sizes`, each hidden one followed by ReLU (and Dropout when
    dropout > 0); the last layer is linear."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return layers


def pixel_statistics(images: Tensor) -> tuple[float, float]:
    """Mean and standard deviation of uint8 pixels scaled to [0, 1], exact, from a 256-bin
    histogram (no float copy of the dataset)."""
    counts = torch.bincount(images.flatten(), minlength=256).double().cpu()
    values = torch.arange(256, dtype=torch.float64) / 255
    n = counts.sum()
    mean = (counts * values).sum() / n
    var = (counts * (values - mean) ** 2).sum() / n
    return float(mean), float(var.sqrt())


class Standardize(nn.Module):
    """uint8 pixels -> (x/255 − mean) / std, with the training split's statistics as buffers."""

    def __init__(self, mean: float = 0.0, std: float = 1.0):
        super().__init__()
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def fit(self, images: Tensor) -> "Standardize":
        """Set the statistics from uint8 training images."""
        mean, std = pixel_statistics(images)
        self.mean.fill_(mean)
        self.std.fill_(max(std, 1e-6))
        return self

    def forward(self, x: Tensor) -> Tensor:
        return (x.float() / 255 - self.mean) / self.std


class FactorisedConv(nn.Sequential):
    """A k×k convolution as k×1 (c_in -> m) then 1×k (m -> c_out), 'same' padding, no bias."""

    def __init__(self, c_in: int, c_out: int, k: int, middle: int | None = None):
        m = middle or min(c_in, c_out)
        super().__init__(nn.Conv2d(c_in, m, (k, 1), padding=(k // 2, 0), bias=False),
                         nn.Conv2d(m, c_out, (1, k), padding=(0, k // 2), bias=False))


class ConvBlock(nn.Module):
    """conv (k×k, or k×1 then 1×k when factorised; no bias: batch norm follows) -> batch norm -> ReLU."""

    def __init__(self, c_in: int, c_out: int, k: int, factorised: bool):
        super().__init__()
        self.conv = (FactorisedConv(c_in, c_out, k) if factorised
                     else nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False))
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.bn(self.conv(x)))
