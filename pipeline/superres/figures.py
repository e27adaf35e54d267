"""Figures of the super-resolution results (matplotlib Figures; the caller saves or logs them)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from torch import Tensor

from pipeline.superres.features import downsample
from pipeline.superres.models import interpolate


ERROR_MAX = 64          # error maps share one scale: |error| in 0-255 levels, mean over RGB, clipped here


def _show(ax, img: Tensor, title: str | None = None, cmap=None):
    im = ax.imshow(img.permute(1, 2, 0).numpy() if img.ndim == 3 else img.numpy(), cmap=cmap,
                   vmin=0, vmax=255 if img.ndim == 3 else ERROR_MAX, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
    return im


def comparison_grid(hr: Tensor, upscaled: dict[str, Tensor], names: tuple[str, ...], factor: int,
                    methods: tuple[str, ...], errors: tuple[str, ...] = ()) -> plt.Figure:
    """Rows = images; columns = original, low-res (nearest), each method, |error| of some methods."""
    low = interpolate(downsample(hr, factor), factor, "nearest")
    cols = 2 + len(methods) + len(errors)
    fig, axes = plt.subplots(len(names), cols, figsize=(1.6 * cols + (0.9 if errors else 0), 1.7 * len(names)),
                             squeeze=False, layout="constrained")
    for i, name in enumerate(names):
        row = axes[i]
        _show(row[0], hr[i], "original" if i == 0 else None)
        _show(row[1], low[i], f"low-res (1/{factor})" if i == 0 else None)
        for j, m in enumerate(methods):
            _show(row[2 + j], upscaled[m][i], m if i == 0 else None)
        for j, m in enumerate(errors):
            err = (upscaled[m][i].float() - hr[i].float()).abs().mean(0)
            im = _show(row[2 + len(methods) + j], err, f"|error| {m}" if i == 0 else None, cmap="magma")
        row[0].set_ylabel(name.split(":")[-1], fontsize=8)
    if errors:
        bar = fig.colorbar(im, ax=axes[:, cols - len(errors):].ravel().tolist(), shrink=0.9, extend="max")
        bar.set_label("|error|, 0–255 levels (RGB mean)", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    return fig


def loss_curves(histories: dict[str, pd.DataFrame]) -> plt.Figure:
    """Train and validation MSE per epoch, one colour per variant, log scale."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for i, (name, h) in enumerate(histories.items()):
        colour = f"C{i}"
        ax.plot(h["epoch"], h["train_loss"], color=colour, ls="--", label=f"{name} train")
        ax.plot(h["epoch"], h["val_loss"], color=colour, label=f"{name} validation")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (pixel values in [0, 1])")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
LABELS = {"holdout_psnr": "PSNR on the held-out photographs (dB)", "psnr": "PSNR on the training photographs (dB)"}


def psnr_bars(summary: dict, key: str = "holdout_psnr") -> plt.Figure:
    """PSNR of every method at 2× and 4×, interpolations first, bars from 0 with their values
    (a bar axis cut at 25 dB makes a 0.3 dB gap look like a chasm); bicubic's value as a line."""
    fig, axes = plt.subplots(1, len(summary), figsize=(5.5 * len(summary), 3.4), squeeze=False)
    for ax, (factor, methods) in zip(axes[0], summary.items()):
        names = [m for m in INTERPOLATIONS if m in methods] + [m for m in methods if m not in INTERPOLATIONS]
        values = [methods[m].get(key, float("nan")) for m in names]
        bars = ax.barh(names[::-1], values[::-1], color=["C0" if m in INTERPOLATIONS else "C1" for m in names[::-1]])
        ax.bar_label(bars, fmt="%.2f", padding=2, fontsize=8)
        if "bicubic" in methods:
            ax.axvline(methods["bicubic"].get(key, float("nan")), color="k", lw=0.8, ls="--")
        ax.set_xlim(0, max(v for v in values if v == v) * 1.15)
        ax.set_xlabel(LABELS.get(key, key), fontsize=8)
        ax.set_title(f"{factor.replace('x', '')}× upscaling (blue: interpolation, orange: MLP)", fontsize=9)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    return fig


def gallery(images: Tensor, names: tuple[str, ...], per_row: int = 5) -> plt.Figure:
    """The images side by side, each titled with its name."""
    rows = -(-len(names) // per_row)
    fig, axes = plt.subplots(rows, per_row, figsize=(1.9 * per_row, 2.0 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, name in zip(axes.flat, images, names):
        _show(ax, img, name.split(":")[-1])
    fig.tight_layout()
    return fig


def evaluation_figures(feats: dict, upscaled: dict, result: dict, variants) -> dict[str, plt.Figure]:
    """The evaluate stage's figures: PSNR bars, and 2x and 4x comparison grids of the training
    photographs and of the held-out ones."""
    two = [n for n, v in variants.items() if v.factor == 2]
    four = [n for n, v in variants.items() if v.factor == 4]
    out = {"psnr.png": psnr_bars(result)}
    for set_name, key, names_key in (("train_images", "hr", "names"), ("holdout", "holdout", "holdout_names")):
        if set_name in upscaled:
            names, up = feats[names_key], upscaled[set_name]
            out[f"grid_x2_{set_name}.png"] = comparison_grid(
                feats[key], up[2], names, 2, ("bicubic", *two), ("bicubic", *two[-1:]))
            out[f"grid_x4_{set_name}.png"] = comparison_grid(
                feats[key], up[4], names, 4, ("bicubic", *[f"{n} x2 twice" for n in two[-1:]], *four),
                ("bicubic", *four[-1:]))
    return out
