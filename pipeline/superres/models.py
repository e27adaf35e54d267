"""The super-resolution MLPs and how they upscale a whole image."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.core.nets import mlp_layers
from pipeline.superres.features import CENTRE, neighbourhoods, rebuild


class PixelMLP(nn.Module):
    """27 low-res neighbourhood values -> `out` high-res values, ReLU hidden layers, linear output.

    With `residual`, the output is an offset added to the centre low-res pixel,
    repeated for each of the out/3 high-res pixels it covers.
    """

    def __init__(self, hidden: tuple[int, ...], out: int, residual: bool = False):
        super().__init__()
        self.net = nn.Sequential(*mlp_layers((27, *hidden, out)))
        self.residual = residual
        self.repeat = out // 3

    def forward(self, x: Tensor) -> Tensor:                  # (B, 27) in [0, 1] -> (B, out)
        y = self.net(x)
        if self.residual:
            y = y + x[:, CENTRE].repeat_interleave(self.repeat, dim=1)
        return y


def build_model(factor: int, target: str, hidden: tuple[int, ...], residual: bool) -> PixelMLP:
    return PixelMLP(hidden, 3 if target == "pixel" else 3 * factor * factor, residual)


@torch.no_grad()
def upscale(model: PixelMLP, lr: Tensor, factor: int, batch_size: int = 65536) -> Tensor:
    """uint8 (N, 3, h, w) -> uint8 (N, 3, h*f, w*f) with the network.

    A per-pixel (literal) network sees the same 27 inputs for all f*f pixels it
    fills, so one prediction per low-res position is copied to all of them.
    """
    model.eval()
    n, _, h, w = lr.shape
    x = neighbourhoods(lr).float().div_(255)
    pred = torch.cat([model(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])
    if pred.shape[1] == 3:
        pred = pred.repeat_interleave(factor * factor, dim=1)
    return to_uint8(rebuild(pred, n, h, w, factor))


def interpolate(lr: Tensor, factor: int, mode: str) -> Tensor:
    """Classical upscaling of uint8 (N, 3, h, w): nearest, bilinear or bicubic."""
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    up = F.interpolate(lr.float() / 255, scale_factor=factor, mode=mode, **kwargs)
    return to_uint8(up)


def to_uint8(x: Tensor) -> Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)
