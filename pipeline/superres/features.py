"""Low-resolution neighbourhood features and their high-resolution targets.

For factor f, an image (3, H, W) is box-downsampled to (3, H/f, W/f). Each
low-res position p gets 27 features: its 3x3 neighbourhood (edges replicated)
in 3 channels, ordered channel-major, c*9 + (dy+1)*3 + (dx+1). Its targets are
the f*f high-res pixels it covers, ordered c*f*f + sy*f + sx (pixel_unshuffle).
The report's literal samples are one per high-res pixel: the same 27 features
repeated for each of the f*f pixels, with that pixel's 3 values as target.

Wider variants (`variant_inputs`) take a k x k window, optionally one row per
colour channel (one network shared by R, G and B), optionally followed by the
bicubic interpolation of the f*f pixels that the network corrects.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

CENTRE = (4, 13, 22)       # the centre pixel's R, G, B among the 27 features


def downsample(hr: Tensor, factor: int) -> Tensor:
    """Box (mean) downsampling of uint8 (N, 3, H, W), rounded back to uint8."""
    return F.avg_pool2d(hr.float(), factor).round().clamp(0, 255).to(torch.uint8)


def neighbourhoods(lr: Tensor, window: int = 3) -> Tensor:
    """(N, C, h, w) -> (N*h*w, C*k*k): each position's k x k neighbourhood, edges replicated."""
    n, c, h, w = lr.shape
    r = window // 2
    padded = F.pad(lr.float(), (r, r, r, r), mode="replicate")
    cols = F.unfold(padded, kernel_size=window)             # (N, C*k*k, h*w)
    return cols.transpose(1, 2).reshape(n * h * w, c * window * window).to(lr.dtype)


def variant_inputs(lr: Tensor, factor: int, window: int = 3, channels: str = "rgb", base: str = "centre") -> Tensor:
    """uint8 (N, 3, h, w) -> uint8 network inputs: per position (rgb) (N*h*w, 3*k*k [+ 3*f*f]) or per
    position and channel (each, rows p*3 + c) (N*h*w*3, k*k [+ f*f]); the bracket is the bicubic
    interpolation of the f*f pixels when `base` is bicubic."""
    x = neighbourhoods(lr, window)
    parts = [x.reshape(-1, window * window) if channels == "each" else x]
    if base == "bicubic":
        b = subpixel_targets(interpolate(lr, factor, "bicubic"), factor)        # (P, 3*f*f)
        parts.append(b.reshape(-1, factor * factor) if channels == "each" else b)
    return torch.cat(parts, dim=1)


def centre_index(window: int, channels: str) -> list[int]:
    """Where the centre low-res pixel sits in a row of `variant_inputs` (one index per channel)."""
    kk = window * window
    return [kk // 2] if channels == "each" else [c * kk + kk // 2 for c in range(3)]


def _dihedral(n: int) -> Tensor:
    """The 8 flips and transposes of an n x n grid, as permutations of its n*n row-major indices."""
    grid = torch.arange(n * n).reshape(n, n)
    maps = [grid, grid.flip(1)]
    maps += [m.T for m in maps]
    maps += [m.flip(0) for m in maps]
    return torch.stack([m.reshape(-1) for m in maps])


def dihedral_index(factor: int, window: int, channels: str, base: str) -> tuple[Tensor, Tensor]:
    """(8, inputs) and (8, targets) gather indices: transform t applied to every patch, bicubic block
    and target block of a row at once. Exact: box downsampling, bicubic interpolation and replicate
    padding all commute with flips and transposes."""
    patch, block = _dihedral(window), _dihedral(factor)
    kk, ff = window * window, factor * factor
    groups = 1 if channels == "each" else 3
    x = [patch + g * kk for g in range(groups)]
    if base == "bicubic":
        x += [block + groups * kk + g * ff for g in range(groups)]
    return torch.cat(x, dim=1), torch.cat([block + g * ff for g in range(groups)], dim=1)


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


def interpolate(lr: Tensor, factor: int, mode: str) -> Tensor:
    """Classical upscaling of uint8 (N, 3, h, w): nearest, bilinear or bicubic."""
    kwargs = {} if mode == "nearest" else {"align_corners": False}
    up = F.interpolate(lr.float() / 255, scale_factor=factor, mode=mode, **kwargs)
    return to_uint8(up)


def to_uint8(x: Tensor) -> Tensor:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)
