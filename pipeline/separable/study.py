"""`separable`: two Gaussian blobs, a ReLU MLP with a softmax output, and whether BCE can reach 0.

Softmax outputs lie strictly inside (0, 1), so in exact arithmetic the loss is positive for
every finite logit margin m = z_true - z_other and only tends to 0. In floating point it
becomes exactly 0.0, at a margin that depends on how the loss is computed: -log p_true is 0
once p_true = 1/(1 + e^-m) rounds to 1 (e^-m below half an ulp of 1: m ~ 24 ln 2 in float32,
53 ln 2 in float64); torch's BCELoss over both softmax outputs also adds -log1p(-q) ~ q = e^-m
for the other output, which is 0 only when e^-m underflows (m ~ 104 in float32, ~745 in float64).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from pipeline.core.params import bounds
from pipeline.core.schedule import TrainConfig
from pipeline.core.scores import accuracy


@dataclass(frozen=True)
class SeparableConfig:
    train: TrainConfig
    n_samples: int = field(default=200, metadata=bounds(ge=4))
    centers: tuple[tuple[float, ...], ...] = ((-1.0, -1.0), (1.0, 1.0))
    cluster_std: float = field(default=0.5, metadata=bounds(gt=0))
    hidden: int = field(default=8, metadata=bounds(ge=1))      # the report's width is in a lost figure
    val_fraction: float = field(default=0.2, metadata=bounds(gt=0, lt=1))

    def at_scale(self, scale: str) -> "SeparableConfig":
        if scale == "full":
            return self
        return dataclasses.replace(self, train=dataclasses.replace(self.train, epochs=5))


def make_data(cfg: SeparableConfig, seed: int) -> tuple[Tensor, Tensor]:
    """The report's sklearn.datasets.make_blobs(n_samples, centers, cluster_std, random_state=seed),
    drawn the way make_blobs draws it: (N, 2) float32, (N,) int64.

    make_blobs gives each center N // k samples (the first N % k one more), draws them center by
    center from one RandomState, then shuffles both arrays with a permutation from the same
    generator. Written out here so that a stage does not import scikit-learn (about a second per
    process); tests/test_separable.py holds it equal to make_blobs itself.
    """
    generator = np.random.RandomState(seed)
    centers = np.asarray(cfg.centers, dtype=np.float64)
    k, features = centers.shape
    counts = [cfg.n_samples // k + (1 if i < cfg.n_samples % k else 0) for i in range(k)]
    x = np.concatenate([generator.normal(loc=c, scale=cfg.cluster_std, size=(n, features))
                        for c, n in zip(centers, counts)])
    y = np.repeat(np.arange(k), counts)
    order = np.arange(cfg.n_samples)
    generator.shuffle(order)
    return torch.from_numpy(x[order].astype(np.float32)), torch.from_numpy(y[order].astype(np.int64))


class SoftmaxMLP(nn.Module):
    """2 -> hidden (ReLU) -> 2 with a softmax output, as in the report (probabilities out)."""

    def __init__(self, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, 2), nn.Softmax(dim=1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def bce_on_softmax(probs: Tensor, labels: Tensor) -> Tensor:
    """Binary cross-entropy of the two softmax outputs against one-hot targets (nn.BCELoss)."""
    return nn.functional.binary_cross_entropy(probs, nn.functional.one_hot(labels, 2).to(probs.dtype))


def losses_at_margin(margins: Tensor) -> dict[str, Tensor]:
    """Per-margin loss of one class-0 sample with logits (m, 0), in margins' dtype, three ways."""
    logits = torch.stack([margins, torch.zeros_like(margins)], dim=1)
    probs = torch.softmax(logits, dim=1)
    target = torch.zeros_like(probs)
    target[:, 0] = 1
    zeros = torch.zeros(len(margins), dtype=torch.long)
    return {
        "BCELoss on both softmax outputs (the report's)":
            nn.functional.binary_cross_entropy(probs, target, reduction="none").mean(1),
        "-log of the softmax probability": -torch.log(probs[:, 0]),
        "CrossEntropyLoss on the logits": nn.functional.cross_entropy(logits, zeros, reduction="none"),
    }


def zero_loss_margins(top: float = 800.0, step: float = 1e-3) -> dict[str, dict[str, float]]:
    """{loss: {dtype: smallest grid margin from which that loss is exactly 0.0}} (inf if never)."""
    out: dict[str, dict[str, float]] = {}
    for name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
        m = torch.arange(0, top, step, dtype=torch.float64).to(dtype)
        for loss_name, loss in losses_at_margin(m).items():
            nonzero = torch.nonzero(loss != 0).flatten()
            last = int(nonzero.max()) if len(nonzero) else -1
            out.setdefault(loss_name, {})[name] = float(m[last + 1]) if last + 1 < len(m) else math.inf
    return out


def rounding_margin(mantissa_bits: int) -> float:
    """Where e^-m falls below half an ulp of 1.0: m = mantissa_bits * ln 2."""
    return mantissa_bits * math.log(2)


def four_point_example(scale: float = 30.0) -> dict:
    """Two points per class and explicit weights: the hidden units compute ReLU(+-(x1 + x2)); the
    output gives each class `scale` times its unit, so the margins are 2 * scale * |x1 + x2|
    (120 and 180 with scale 30: past float32's zero point for BCELoss, far from float64's)."""
    x = torch.tensor([[-1.0, -1.0], [-2.0, -1.0], [1.0, 1.0], [2.0, 1.0]])
    y = torch.tensor([0, 0, 1, 1])
    model = SoftmaxMLP(hidden=2)
    with torch.no_grad():
        first, second = model.net[0], model.net[2]
        first.weight.copy_(torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
        first.bias.zero_()
        second.weight.copy_(torch.tensor([[scale, -scale], [-scale, scale]]))
        second.bias.zero_()
    out = {"x": x.tolist(), "y": y.tolist(), "scale": scale,
           "margins": (2 * scale * (x.sum(1)).abs()).tolist()}
    for name, dtype in (("float32", torch.float32), ("float64", torch.float64)):
        m = model.to(dtype)
        with torch.no_grad():
            probs = m(x.to(dtype))
            out[f"loss_{name}"] = bce_on_softmax(probs, y).item()
            out[f"accuracy_{name}"] = accuracy(probs, y)["accuracy"].item()
    # exact value: per sample (log(1 + e^-m) + log(1 + e^-m)) / 2 = log1p(e^-m), all positive
    out["loss_exact"] = float(np.mean([math.log1p(math.exp(-m)) for m in out["margins"]]))
    return out


@torch.no_grad()
def decision_grid(model: nn.Module, lim: float = 3.0, n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(class 1) on an n x n grid over [-lim, lim]^2."""
    xs = np.linspace(-lim, lim, n, dtype=np.float32)
    gx, gy = np.meshgrid(xs, xs)
    pts = torch.from_numpy(np.stack([gx.ravel(), gy.ravel()], 1))
    model.eval()
    p = model(pts.to(next(model.parameters()).device))[:, 1].cpu().numpy().reshape(n, n)
    return gx, gy, p


def splits(x: Tensor, y: Tensor, val_fraction: float, seed: int, device) -> tuple:
    """A seeded train/validation split of the blobs, on `device`: (train Split, val Split)."""
    from pipeline.core.split import Split

    n_val = round(val_fraction * len(y))
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    return tuple(Split(x[i].to(device), y[i].to(device)) for i in (perm[n_val:], perm[:n_val]))


def zero_loss_answer() -> dict:
    """The answer to "can the loss be exactly 0?", measured: the margins where each form of the
    loss becomes 0.0, the rounding margins of float32 and float64, and the four-point example."""
    return {"margins": zero_loss_margins(),
            "rounding_margin": {"float32": rounding_margin(24), "float64": rounding_margin(53)},
            "four_points": four_point_example()}
