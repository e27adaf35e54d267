"""Seed 002 Q1: activations and their derivatives, nRMSE / rRMSE beside MSE, dropout variants."""
from __future__ import annotations

import pandas as pd
import torch
from torch import Tensor, nn

ACTIVATIONS = {
    "ReLU": lambda: nn.ReLU(),
    "LeakyReLU": lambda: nn.LeakyReLU(0.01),
    "PReLU": lambda: nn.PReLU(init=0.25),
    "RReLU": lambda: nn.RReLU(1 / 8, 1 / 3),
    "ELU": lambda: nn.ELU(1.0),
    "SELU": lambda: nn.SELU(),
    "GELU": lambda: nn.GELU(),
}


def activation_curves(xs: Tensor) -> dict[str, tuple[Tensor, Tensor]]:
    """{name: (f(x), f'(x))} on the grid, derivatives by autograd, in eval mode (RReLU's
    slope is then the mean of its range; in training it is drawn at random per element)."""
    out = {}
    for name, make in ACTIVATIONS.items():
        f = make().double().eval()
        x = xs.double().clone().requires_grad_(True)
        y = f(x)
        (grad,) = torch.autograd.grad(y.sum(), x)
        out[name] = (y.detach(), grad)
    return out


def activation_properties() -> pd.DataFrame:
    """Properties measured, not recalled: values and slopes around 0 and far out, learnable
    parameters, whether training mode is random, and the mean output on N(0, 1) inputs."""
    rows = []
    probe = torch.tensor([-10.0, -1e-6, 1e-6, 10.0], dtype=torch.float64)
    normal = torch.randn(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for name, make in ACTIVATIONS.items():
        f = make().double().eval()
        x = probe.clone().requires_grad_(True)
        y = f(x)
        (g,) = torch.autograd.grad(y.sum(), x)
        train = make().double().train()
        stochastic = not torch.equal(train(normal[:1000]), train(normal[:1000]))
        with torch.no_grad():
            out = f(normal)
        rows.append({"activation": name, "f(-10)": round(y[0].item(), 4), "slope at -10": round(g[0].item(), 4),
                     "slope left of 0": round(g[1].item(), 4), "slope right of 0": round(g[2].item(), 4),
                     "smooth at 0": abs(g[1].item() - g[2].item()) < 1e-3,
                     "mean on N(0,1)": round(out.mean().item(), 3), "std on N(0,1)": round(out.std().item(), 3),
                     "learnable parameters": sum(p.numel() for p in f.parameters()),
                     "random in training": stochastic})
    return pd.DataFrame(rows).set_index("activation")


# ---------------------------------------------------------------- losses


def mse(pred: Tensor, target: Tensor) -> Tensor:
    return ((pred - target) ** 2).mean()


def rmse(pred: Tensor, target: Tensor) -> Tensor:
    return mse(pred, target).sqrt()


def nrmse(pred: Tensor, target: Tensor) -> Tensor:
    """RMSE normalised by the range of the targets: unit-free, comparable across data sets."""
    return rmse(pred, target) / (target.max() - target.min())


def rrmse(pred: Tensor, target: Tensor) -> Tensor:
    """Relative RMSE: RMSE divided by the mean target (often quoted in %)."""
    return rmse(pred, target) / target.mean()


def loss_scale_table(seed: int = 0) -> pd.DataFrame:
    """The four losses on one prediction, then with targets and predictions scaled by 10 and shifted by 100."""
    g = torch.Generator().manual_seed(seed)
    y = 5 + torch.rand(1000, generator=g, dtype=torch.float64) * 10
    p = y + torch.randn(1000, generator=g, dtype=torch.float64)
    cases = {"as is": (p, y), "both x10": (10 * p, 10 * y), "both +100": (p + 100, y + 100)}
    return pd.DataFrame({case: {"MSE": mse(a, b).item(), "RMSE": rmse(a, b).item(), "nRMSE": nrmse(a, b).item(),
                                "rRMSE": rrmse(a, b).item()} for case, (a, b) in cases.items()}).T


# ---------------------------------------------------------------- dropout


def dropout_patterns(p: float = 0.5, seed: int = 0) -> dict[str, dict]:
    """Each dropout on a tensor of ones (N=2, C=6, D=2, H=3, W=3 or without D): what is zeroed."""
    out = {}
    shapes = {"Dropout": (2, 6, 3, 3), "Dropout2d": (2, 6, 3, 3), "Dropout3d": (2, 6, 2, 3, 3)}
    for name, shape in shapes.items():
        torch.manual_seed(seed)
        layer = getattr(nn, name)(p).train()
        y = layer(torch.ones(shape))
        per_channel = y.reshape(shape[0] * shape[1], -1)
        whole = ((per_channel == 0).all(1) | (per_channel != 0).all(1)).float().mean().item()
        out[name] = {"output": y, "zero fraction": (y == 0).float().mean().item(),
                     "kept value": y[y != 0].unique().tolist(),
                     "channels all-or-nothing": whole,
                     "eval is identity": torch.equal(layer.eval()(torch.ones(shape)), torch.ones(shape))}
    return out
