"""Low-resolution neighbourhood features and their high-resolution targets.

For factor f, an image (3, H, W) is box-downsampled to (3, H/f, W/f). Each
low-res position p gets 27 features: its 3x3 neighbourhood (edges replicated)
in 3 channels, ordered channel-major, c*9 + (dy+1)*3 + (dx+1). Its targets are
the f*f high-res pixels it covers, ordered c*f*f + sy*f + sx (pixel_unshuffle).
The report's literal samples are one per high-res pixel: the same 27 features
repeated for each of the f*f pixels, with that pixel's 3 values as target.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

CENTRE = (4, 13, 22)       # the centre pixel's R, G, B among the 27 features


def downsample(hr: Tensor, factor: int) -> Tensor:
    """Box (mean) downsampling of uint8 (N, 3, H, W), rounded back to uint8."""
    return F.avg_pool2d(hr.float(), factor).round().clamp(0, 255).to(torch.uint8)


def neighbourhoods(lr: Tensor) -> Tensor:
    """(N, C, h, w) -> (N*h*w, 9*C): each position's 3x3 neighbourhood, edges replicated."""
    n, c, h, w = lr.shape
    padded = F.pad(lr.float(), (1, 1, 1, 1), mode="replicate")
    cols = F.unfold(padded, kernel_size=3)                  # (N, C*9, h*w)
    return cols.transpose(1, 2).reshape(n * h * w, c * 9).to(lr.dtype)


def subpixel_targets(hr: Tensor, factor: int) -> Tensor:
    """(N, C, H, W) -> (N*h*w, C*f*f): the high-res pixels under each low-res position."""
    blocks = F.pixel_unshuffle(hr, factor)                   # (N, C*f*f, h, w)
    n, k = blocks.shape[:2]
    return blocks.permute(0, 2, 3, 1).reshape(-1, k)


def rebuild(pred: Tensor, n: int, h: int, w: int, factor: int) -> Tensor:
    """Inverse of subpixel_targets: (N*h*w, C*f*f) -> (N, C, h*f, w*f)."""
    k = pred.shape[1]
    blocks = pred.reshape(n, h, w, k).permute(0, 3, 1, 2)
    return F.pixel_shuffle(blocks, factor)


def literal_samples(x: Tensor, y: Tensor, factor: int) -> tuple[Tensor, Tensor]:
    """Per-high-res-pixel samples: inputs repeated f*f times, targets (.., 3). Row p*f*f + s."""
    ff = factor * factor
    return x.repeat_interleave(ff, dim=0), y.reshape(-1, 3, ff).transpose(1, 2).reshape(-1, 3)


def literal_index(idx: Tensor, factor: int) -> Tensor:
    """Low-res positions -> the rows of their literal samples."""
    ff = factor * factor
    return (idx[:, None] * ff + torch.arange(ff, device=idx.device)).reshape(-1)


def split_positions(n: int, fractions: tuple[float, ...], generator: torch.Generator) -> dict[str, Tensor]:
    """Shuffle 0..n-1 and cut into train / test / val by the given fractions."""
    perm = torch.randperm(n, generator=generator)
    n_train, n_test = round(fractions[0] * n), round(fractions[1] * n)
    return {"train": perm[:n_train], "test": perm[n_train:n_train + n_test], "val": perm[n_train + n_test:]}


def build_samples(hr: Tensor, factors: tuple[int, ...], fractions: tuple[float, ...], seed: int) -> dict:
    """Everything the training stages need, as uint8 tensors plus split indices."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for f in factors:
        lr = downsample(hr, f)
        out[f] = {"x": neighbourhoods(lr), "y": subpixel_targets(hr, f),
                  "split": split_positions(lr.shape[0] * lr.shape[2] * lr.shape[3], fractions, gen)}
    return out
