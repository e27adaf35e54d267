"""Gradients and optimiser steps of seeds 001 and 002, by hand formula and by torch."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# ---------------------------------------------------------------- seed 001 Q3: global max pooling

# The seed's input figure is lost; its answer needs the winning 2x2 patch to be [[-1, 5], [3, 0]]
# (bottom-left, output 10). This input, filter and bias reproduce that.
GMP_INPUT = torch.tensor([[0.0, 0.0, 0.0], [-1.0, 5.0, 0.0], [3.0, 0.0, 0.0]])
GMP_FILTER = torch.tensor([[1.0, 2.0], [1.0, 0.0]])
GMP_BIAS = -2.0


def global_max_pool_grads(x: Tensor = GMP_INPUT, w: Tensor = GMP_FILTER, b: float = GMP_BIAS) -> dict:
    """Loss = max over the 2x2-conv outputs; autograd's dLoss/dw (row-major), dLoss/db, and z."""
    weight = w.clone().reshape(1, 1, 2, 2).requires_grad_(True)
    bias = torch.tensor([b], requires_grad=True)
    z = F.conv2d(x.reshape(1, 1, *x.shape), weight, bias)          # (1, 1, 2, 2)
    loss = z.amax()
    loss.backward()
    return {"z": z.detach().flatten().tolist(), "max": loss.item(),
            "dw": tuple(weight.grad.flatten().tolist()), "db": bias.grad.item(),
            "winning_patch": _patch_at_argmax(x, z.detach()[0, 0])}


def _patch_at_argmax(x: Tensor, z: Tensor) -> tuple[float, ...]:
    r, c = divmod(int(z.argmax()), z.shape[1])
    return tuple(x[r:r + 2, c:c + 2].flatten().tolist())


# ---------------------------------------------------------------- seed 001 Q4: two momentum steps

MOMENTUM_SAMPLES = ((1.0, -1.0, 10.0), (2.0, 0.0, 13.0))   # (x1, x2, t)
MOMENTUM_START = {"a": 1.0, "b": -1.0, "c": -1.0, "d": 1.0}


def momentum_steps(lr: float = 0.1, momentum: float = 0.9) -> list[dict]:
    """y = a x1^2 + b x2^2 + c x1 x2 + d, loss (t - y)^2, one torch.optim.SGD step per sample.
    Each record: the sample, y before the step, gradients, velocities, parameters after."""
    p = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in MOMENTUM_START.items()}
    opt = torch.optim.SGD(p.values(), lr=lr, momentum=momentum)
    out = []
    for x1, x2, t in MOMENTUM_SAMPLES:
        opt.zero_grad()
        y = p["a"] * x1 ** 2 + p["b"] * x2 ** 2 + p["c"] * x1 * x2 + p["d"]
        loss = (t - y) ** 2
        loss.backward()
        grads = {k: v.grad.item() for k, v in p.items()}
        opt.step()
        out.append({"sample": (x1, x2, t), "y": y.item(), "loss": loss.item(), "grad": grads,
                    "velocity": {k: opt.state[v]["momentum_buffer"].item() for k, v in p.items()},
                    "params": {k: v.item() for k, v in p.items()}})
    return out


def momentum_by_hand(lr: float = 0.1, momentum: float = 0.9) -> list[dict]:
    """The same two steps written out: v <- mu v + g, p <- p - lr v."""
    p, v, out = dict(MOMENTUM_START), dict.fromkeys(MOMENTUM_START, 0.0), []
    for x1, x2, t in MOMENTUM_SAMPLES:
        y = p["a"] * x1 ** 2 + p["b"] * x2 ** 2 + p["c"] * x1 * x2 + p["d"]
        dy = -2 * (t - y)
        g = {"a": dy * x1 ** 2, "b": dy * x2 ** 2, "c": dy * x1 * x2, "d": dy}
        v = {k: momentum * v[k] + g[k] for k in p}
        p = {k: p[k] - lr * v[k] for k in p}
        out.append({"y": y, "grad": g, "velocity": v, "params": p})
    return out


# ---------------------------------------------------------------- seed 002 Q4: a 1-D conv net

def conv1d_net(x: Tensor, k: Tensor, b: Tensor, w: Tensor, a: Tensor, y: Tensor) -> dict:
    """z = valid conv(x, k) + b; v = (max(z1, z2, 0), max(z2, z3, 0)); y_hat = w.v + a;
    L = (y - y_hat)^2 / 2. Returns the intermediate values."""
    z = torch.stack([(k * x[i:i + 3]).sum() + b for i in range(3)])
    zero = z.new_zeros(())
    v = torch.stack([torch.max(torch.stack([z[0], z[1], zero])), torch.max(torch.stack([z[1], z[2], zero]))])
    y_hat = (w * v).sum() + a
    return {"z": z, "v": v, "y_hat": y_hat, "loss": 0.5 * (y - y_hat) ** 2}


def conv1d_closed_form(x: Tensor, k: Tensor, b: Tensor, w: Tensor, a: Tensor, y: Tensor) -> dict:
    """The closed-form gradients: dL/dw_i = (y_hat - y) v_i, dL/da = y_hat - y,
    delta_i = dL/dv_i = (y_hat - y) w_i, alpha_j = dL/dz_j routed to each max's winner,
    dL/dk_i = sum_j alpha_j x_{i+j-1}, dL/db = sum_j alpha_j."""
    with torch.no_grad():
        f = conv1d_net(x, k, b, w, a, y)
        z, v, err = f["z"], f["v"], f["y_hat"] - y
        delta = err * w
        alpha = torch.zeros(3, dtype=x.dtype)
        for pair, (i, j) in enumerate(((0, 1), (1, 2))):
            if v[pair] > 0:                              # the max is z_i or z_j, not 0
                alpha[i if z[i] >= z[j] else j] += delta[pair]
        return {"w": err * v, "a": err, "delta": delta, "alpha": alpha,
                "k": general_kernel_grad(alpha, x, 3), "b": alpha.sum()}


def general_kernel_grad(alpha: Tensor, x: Tensor, d: int) -> Tensor:
    """The general case: z_j = sum_i k_i x_{i+j-1} + b gives dL/dk_i = sum_j alpha_j x_{i+j-1}."""
    m = alpha.shape[0]
    return torch.stack([(alpha * x[i:i + m]).sum() for i in range(d)])
