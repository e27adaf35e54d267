"""Figures of `colourize`: the palette, and validation horses grey / ours / true colours."""
from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from torch import Tensor


def palette_figure(palette: Tensor, classes: Tensor):
    """Each palette colour as a swatch, with its share of the training pixels."""
    share = torch.bincount(classes.flatten().long(), minlength=len(palette)).float()
    share = 100 * share / share.sum()
    fig, ax = plt.subplots(figsize=(min(0.5 * len(palette) + 1, 16), 1.8))
    ax.bar(range(len(palette)), share.numpy(), color=palette.clamp(0, 1).numpy(), edgecolor="black", linewidth=0.4)
    ax.set(xticks=range(len(palette)), xlabel="palette colour", ylabel="% of training pixels",
           title="the k-means palette of the training horses")
    ax.tick_params(axis="x", labelsize=6)
    fig.tight_layout()
    return fig


def colourised(rows: dict[str, Tensor]):
    """One column per image, one row per entry of `rows` (name -> uint8 RGB (N, 3, H, W), or
    float grey (N, 1, H, W) in [0, 1])."""
    names = list(rows)
    n = len(next(iter(rows.values())))
    fig, axes = plt.subplots(len(names), n, figsize=(1.2 * n, 1.25 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        for c in range(n):
            img = rows[name][c].cpu()
            ax = axes[r][c]
            if img.shape[0] == 1:
                ax.imshow(img[0].numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(img.permute(1, 2, 0).numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.tight_layout()
    return fig
