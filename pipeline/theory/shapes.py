"""Layer tables (output shape, parameters, receptive field) and dilated-convolution formulas.

Receptive fields follow the usual recurrence over layers with kernel k, stride s and
dilation d (effective kernel d(k-1)+1): r_out = r_in + d(k-1) j_in, j_out = j_in s, where
j is the jump (input pixels between neighbouring outputs). A fully connected layer sees
the whole input.
"""
from __future__ import annotations

import pandas as pd
import torch
from torch import nn


def seed001_cnn() -> tuple[tuple[int, int, int], list[tuple[str, nn.Module]]]:
    """The 11-layer CNN of seed 001 Q1. The question text is lost; its answers fit a 134x134x3
    input with no padding anywhere and a dilation of 2 in L4 (3x3, 31 -> 27)."""
    layers = [
        ("L1 conv 7x7, 32", nn.Conv2d(3, 32, 7)),
        ("L2 conv 5x5, 64, stride 2", nn.Conv2d(32, 64, 5, stride=2)),
        ("L3 max-pool 2", nn.MaxPool2d(2)),
        ("L4 conv 3x3, 128, dilation 2", nn.Conv2d(64, 128, 3, dilation=2)),
        ("L5 conv 3x3, 128", nn.Conv2d(128, 128, 3)),
        ("L6 max-pool 2", nn.MaxPool2d(2)),
        ("L7 conv 3x3, 256", nn.Conv2d(128, 256, 3)),
        ("L8 max-pool 2", nn.MaxPool2d(2)),
        ("L9 flatten + FC 1024", nn.Sequential(nn.Flatten(), nn.Linear(5 * 5 * 256, 1024))),
        ("L10 dropout", nn.Dropout(0.5)),
        ("L11 FC 10", nn.Linear(1024, 10)),
    ]
    return (3, 134, 134), layers


def seed002_table_net() -> tuple[tuple[int, int, int], list[tuple[str, nn.Module]]]:
    """Seed 002 Q3: CONVx-N(S, P) has N x-by-x filters, stride S and padding P (default 1, 1)."""
    layers = [
        ("CONV3-8", nn.Conv2d(3, 8, 3, stride=1, padding=1)),
        ("ReLU", nn.ReLU()),
        ("POOL-2", nn.MaxPool2d(2)),
        ("BATCHNORM", nn.BatchNorm2d(8)),
        ("CONV5-16(3, 2)", nn.Conv2d(8, 16, 5, stride=3, padding=2)),
        ("ReLU ", nn.ReLU()),
        ("POOL-2 ", nn.MaxPool2d(2)),
        ("FLATTEN", nn.Flatten()),
        ("FC-10", nn.Linear(3 * 3 * 16, 10)),
    ]
    return (3, 32, 32), layers


def _geometry(module: nn.Module) -> tuple[int, int, int] | None:
    """(kernel, stride, dilation) along one axis, or None for layers that see everything."""
    if isinstance(module, nn.Sequential):
        found = [_geometry(m) for m in module]
        return None if any(g is None for g in found) else (1, 1, 1)
    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        pick = lambda v: v[0] if isinstance(v, tuple) else v  # noqa: E731
        dil = pick(getattr(module, "dilation", 1))
        return pick(module.kernel_size), pick(module.stride), dil
    if isinstance(module, (nn.Linear,)):
        return None
    return 1, 1, 1                                   # activations, norms, dropout, flatten


def layer_table(input_shape: tuple[int, int, int], layers: list[tuple[str, nn.Module]]) -> pd.DataFrame:
    """Run a real tensor through the layers; one row per layer with its shape, parameters,
    learnable parameters vs buffers, and receptive field / jump in input pixels."""
    x = torch.zeros(1, *input_shape)
    rf, jump, whole = 1, 1, False
    rows = []
    for name, module in layers:
        module.eval()
        with torch.no_grad():
            x = module(x)
        geo = _geometry(module)
        if geo is None:
            whole = True
        elif not whole:
            k, s, d = geo
            rf, jump = rf + d * (k - 1) * jump, jump * s
        shape = "x".join(map(str, (*x.shape[2:], x.shape[1]))) if x.ndim == 4 else str(x.shape[1])
        rows.append({
            "layer": name.strip(), "output": shape,
            "parameters": sum(p.numel() for p in module.parameters()),
            "buffers": sum(b.numel() for b in module.buffers()),
            "receptive_field": f"{input_shape[1]}x{input_shape[2]} (all)" if whole else f"{rf}x{rf}",
            "jump": None if whole else jump,
        })
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- dilated convolution (seed 002 Q2)

def range_seen(i: int, k: int, d: int, layers: int = 3) -> tuple[int, int]:
    """Inclusive input rows (0-based) that output row i sees after `layers` k x k convolutions
    of dilation d, stride 1, no padding: i .. i + layers d (k-1). Columns alike."""
    return i, i + layers * d * (k - 1)


def dilated_output_size(n: int, k: int, d: int, m: int) -> tuple[int, int, int]:
    """m filters k x k x 3, dilation d, stride 1, no padding, on N x N x 3: (N - d(k-1))^2 x m."""
    side = n - d * (k - 1)
    return side, side, m


def _stack(k: int, d: int, layers: int) -> nn.Sequential:
    convs = [nn.Conv2d(1, 1, k, dilation=d, bias=False) for _ in range(layers)]
    for c in convs:
        nn.init.ones_(c.weight)                  # all-ones: every path carries gradient
    return nn.Sequential(*convs)


def check_dilation(sizes, kernels, dilations, m: int = 4, layers: int = 3) -> pd.DataFrame:
    """Both formulas against torch over a grid; the range also by perturbing inputs."""
    rows = []
    for n in sizes:
        for k in kernels:
            for d in dilations:
                reach = layers * d * (k - 1)
                if n - reach < 1:
                    continue
                conv = nn.Conv2d(3, m, k, dilation=d)
                out = tuple(conv(torch.zeros(1, 3, n, n)).shape[1:])
                size_ok = (out[1], out[2], out[0]) == dilated_output_size(n, k, d, m)
                i = j = (n - reach - 1) // 2
                x = torch.randn(1, 1, n, n, requires_grad=True)
                net = _stack(k, d, layers)
                y = net(x)
                y[0, 0, i, j].backward()
                rows_hit = torch.nonzero(x.grad[0, 0].abs().sum(1)).flatten()
                lo, hi = range_seen(i, k, d, layers)
                grad_ok = (rows_hit.min().item(), rows_hit.max().item()) == (lo, hi)
                rows.append({"N": n, "k": k, "d": d, "output (formula)": dilated_output_size(n, k, d, m),
                             "output (torch)": (out[1], out[2], out[0]), "size_ok": size_ok,
                             "rows seen (formula)": (lo, hi), "gradient_ok": grad_ok,
                             "perturbation_ok": _perturbation_ok(net, x.detach(), i, j, lo, hi)})
    return pd.DataFrame(rows)


@torch.no_grad()
def _perturbation_ok(net: nn.Module, x: torch.Tensor, i: int, j: int, lo: int, hi: int) -> bool:
    """Changing an input just outside [lo, hi]^2 leaves output (i, j) as it was; at the edge it does not."""
    base = net(x)[0, 0, i, j]
    n = x.shape[-1]
    ok = True
    for r, c, inside in ((lo, lo, True), (hi, hi, True), (lo - 1, lo, False), (hi + 1, hi, False),
                         (lo, hi + 1, False)):
        if not (0 <= r < n and 0 <= c < n):
            continue
        y = x.clone()
        y[0, 0, r, c] += 1.0
        changed = not torch.equal(net(y)[0, 0, i, j], base)
        ok &= changed == inside
    return ok
