"""Seed 000 Q3-Q4 and seed 004 Q3: piecewise linearity, symmetry breaking, residual gradients."""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

# ---------------------------------------------------------------- ReLU networks are piecewise linear


def hat_network(knots: Tensor, values: Tensor) -> nn.Sequential:
    """The report's construction: for each interior knot x_j four ReLU units with weight 1/h and
    biases -x_{j-1}/h, -x_j/h, -x_{j+1}/h, -x_j/h, combined +1, -1, +1, -1 into the hat t_j,
    and the output sum_j f(x_j) t_j(x). Uniform knots x_0..x_N on an interval, spacing h."""
    knots = knots.double()
    h = float(knots[1] - knots[0])
    ext = torch.cat([knots[:1] - h, knots, knots[-1:] + h])          # x_{-1} and x_{N+1}
    n = knots.shape[0]
    first = nn.Linear(1, 4 * n, dtype=torch.float64)
    second = nn.Linear(4 * n, 1, dtype=torch.float64)
    with torch.no_grad():
        first.weight.fill_(1 / h)
        biases = torch.stack([ext[:-2], ext[1:-1], ext[2:], ext[1:-1]], dim=1)    # (n, 4)
        first.bias.copy_(-(biases / h).reshape(-1))
        signs = torch.tensor([1.0, -1.0, 1.0, -1.0]).repeat(n)
        second.weight.copy_((signs * values.repeat_interleave(4)).reshape(1, -1))
        second.bias.zero_()
    return nn.Sequential(first, nn.ReLU(), second)


def second_differences(f, xs: Tensor) -> Tensor:
    """f(x+e) - 2 f(x) + f(x-e) on a uniform grid: zero wherever f is linear."""
    with torch.no_grad():
        y = f(xs[:, None].double()).squeeze(-1)
    return y[2:] - 2 * y[1:-1] + y[:-2]


def linear_regions_on_a_line(model: nn.Sequential, start: Tensor, end: Tensor, points: int) -> int:
    """Distinct consecutive activation patterns of `model`'s ReLU/PReLU units along the segment."""
    t = torch.linspace(0, 1, points, dtype=torch.float64)[:, None]
    x = (1 - t) * start.double() + t * end.double()
    patterns = []
    h = x
    with torch.no_grad():
        for layer in model.double():
            h = layer(h)
            if isinstance(layer, (nn.ReLU, nn.PReLU)):
                patterns.append(h > 0)
    code = torch.cat(patterns, dim=1)
    changes = (code[1:] != code[:-1]).any(dim=1).sum().item()
    return int(changes) + 1


def random_mlp(width: int, depth: int, activation: str, seed: int, d_in: int = 2) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    sizes = (d_in, *([width] * depth))
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.PReLU(b, init=0.2) if activation == "prelu" else nn.ReLU()]
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


# ---------------------------------------------------------------- symmetry breaking


def symmetry_run(init: str, hidden: int, steps: int, lr: float, seed: int, dropout: float = 0.0) -> dict:
    """Train a 2-layer tanh MLP on a fixed regression task; return the spread between hidden units
    (largest distance between two units' incoming weight vectors) before and after."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 4, generator=g)
    y = torch.sin(x @ torch.randn(4, 1, generator=g))
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, hidden), nn.Tanh(), nn.Dropout(dropout), nn.Linear(hidden, 1))
    if init == "constant":
        for p in model.parameters():
            nn.init.constant_(p, 0.3)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    spread = lambda: torch.cdist(model[0].weight.detach(), model[0].weight.detach()).max().item()  # noqa: E731
    before = spread()
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    return {"init": init, "dropout": dropout, "spread_before": before, "spread_after": spread(),
            "final_loss": loss.item()}


# ---------------------------------------------------------------- residual connections and vanishing gradients


class DeepNet(nn.Module):
    """depth blocks of Linear + sigmoid, optionally each wrapped as x + block(x)."""

    def __init__(self, width: int, depth: int, residual: bool):
        super().__init__()
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(width, width), nn.Sigmoid()) for _ in range(depth))
        self.residual = residual
        self.head = nn.Linear(width, 1)
        self.inputs: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        self.inputs = []
        for block in self.blocks:
            if x.requires_grad:
                x.retain_grad()
            self.inputs.append(x)
            x = x + block(x) if self.residual else block(x)
        return self.head(x)


def gradient_norms(width: int, depth: int, seed: int) -> dict[str, np.ndarray]:
    """Norm of dLoss/d(input of block l) for l = 1..depth, plain vs residual, same weights:
    the backward signal that vanishes, measured where it enters each block."""
    out = {}
    for residual in (False, True):
        torch.manual_seed(seed)
        net = DeepNet(width, depth, residual).double()          # float64: plain-net gradients underflow float32
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(64, width, generator=g, dtype=torch.float64, requires_grad=True)
        y = torch.randn(64, 1, generator=g, dtype=torch.float64)
        nn.functional.mse_loss(net(x), y).backward()
        out["residual" if residual else "plain"] = np.array([h.grad.norm().item() for h in net.inputs])
    return out
