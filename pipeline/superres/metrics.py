"""PSNR and SSIM on batches of images, on any device; equal to skimage.metrics.

SSIM follows skimage's defaults: a 7x7 uniform window, K1 = 0.01, K2 = 0.03,
sample covariance, the mean over the valid interior (where the window fits) and
over channels.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def psnr(pred: Tensor, target: Tensor, data_range: float = 255.0) -> Tensor:
    """(N, C, H, W) pairs -> (N,) PSNR in dB."""
    diff = pred.double() - target.double()
    mse = diff.pow(2).flatten(1).mean(1)
    return 10 * torch.log10(data_range ** 2 / mse)


def ssim(pred: Tensor, target: Tensor, data_range: float = 255.0, win: int = 7) -> Tensor:
    """(N, C, H, W) pairs -> (N,) mean SSIM."""
    x, y = pred.double(), target.double()
    n, c = x.shape[:2]

    def local_mean(t: Tensor) -> Tensor:                    # (N, C, H-win+1, W-win+1)
        return F.avg_pool2d(t, win, stride=1)

    ux, uy = local_mean(x), local_mean(y)
    cov_norm = win * win / (win * win - 1)
    vx = cov_norm * (local_mean(x * x) - ux * ux)
    vy = cov_norm * (local_mean(y * y) - uy * uy)
    vxy = cov_norm * (local_mean(x * y) - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
    return s.reshape(n, -1).mean(1)
