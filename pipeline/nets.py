"""Layer stacks shared by the experiments' networks."""
from __future__ import annotations

from torch import nn


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
