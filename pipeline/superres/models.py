"""The super-resolution MLPs and how they upscale a whole image."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from pipeline.core.nets import mlp_layers
from pipeline.superres.features import CENTRE, centre_index, interpolate, rebuild, to_uint8, variant_inputs

__all__ = ["PixelMLP", "build_model", "interpolate", "to_uint8", "upscale", "variant_model"]


class PixelMLP(nn.Module):
    """Low-res neighbourhood values -> `out` high-res values, ReLU hidden layers, linear output.

    With `residual`, the output is an offset added to a base: the centre low-res pixel, repeated for
    each of the high-res pixels it covers, or (`base_width` > 0) the last `base_width` inputs, the
    bicubic interpolation of those pixels, which the network only corrects.
    """

    def __init__(self, hidden: tuple[int, ...], out: int, residual: bool = False, inputs: int = 27,
                 centre: tuple[int, ...] = CENTRE, base_width: int = 0):
        super().__init__()
        self.net = nn.Sequential(*mlp_layers((inputs - base_width, *hidden, out)))
        self.residual, self.base_width = residual, base_width
        self.centre, self.repeat = list(centre), out // len(centre)
        self.window, self.channels, self.base = 3, "rgb", "centre"      # how upscale builds the inputs

    def forward(self, x: Tensor) -> Tensor:                  # (B, inputs) in [0, 1] -> (B, out)
        if self.base_width:
            return self.net(x[:, :-self.base_width]) + x[:, -self.base_width:]
        y = self.net(x)
        if self.residual:
            y = y + x[:, self.centre].repeat_interleave(self.repeat, dim=1)
        return y


def build_model(factor: int, target: str, hidden: tuple[int, ...], residual: bool, window: int = 3,
                channels: str = "rgb", base: str = "centre") -> PixelMLP:
    groups = 1 if channels == "each" else 3
    ff = factor * factor
    out = 3 if target == "pixel" else groups * ff
    base_width = out if residual and base == "bicubic" else 0
    model = PixelMLP(hidden, out, residual, groups * window * window + base_width, centre_index(window, channels),
                     base_width)
    model.window, model.channels, model.base = window, channels, base
    return model


def variant_model(variant) -> PixelMLP:
    """The network a params.yaml variant (pipeline.superres.config.Variant) describes."""
    return build_model(variant.factor, variant.target, variant.hidden, variant.residual, variant.window,
                       variant.channels, variant.base)


@torch.no_grad()
def upscale(model: PixelMLP, lr: Tensor, factor: int, batch_size: int = 65536) -> Tensor:
    """uint8 (N, 3, h, w) -> uint8 (N, 3, h*f, w*f) with the network.

    A per-pixel (literal) network sees the same 27 inputs for all f*f pixels it
    fills, so one prediction per low-res position is copied to all of them.
    """
    model.eval()
    n, _, h, w = lr.shape
    x = variant_inputs(lr, factor, model.window, model.channels, model.base).float().div_(255)
    pred = torch.cat([model(x[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)])
    if model.channels == "each":
        pred = pred.reshape(n * h * w, -1)                    # rows p*3 + c -> (P, 3*f*f), c-major
    elif pred.shape[1] == 3:
        pred = pred.repeat_interleave(factor * factor, dim=1)
    return to_uint8(rebuild(pred, n, h, w, factor))
