"""Figures of the EMNIST study: matplotlib in, figures out."""
from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from torch import Tensor


def class_grid(images: Tensor, classes: tuple[str, ...], cols: int = 16):
    """One (N, 28, 28) image per class in a grid, each titled with its class; a class with no
    image (an empty tensor in its place) gets an empty tile."""
    rows = -(-len(classes) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(0.75 * cols, 0.9 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, name in zip(axes.flat, images, classes):
        if img.numel():
            ax.imshow(img.cpu().float(), cmap="gray_r")
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    return fig


def orientation(stored: Tensor, upright: Tensor, titles: list[str]):
    """The same images as the IDX file stores them (top) and turned upright (bottom)."""
    n = len(stored)
    fig, axes = plt.subplots(2, n, figsize=(1.2 * n, 2.8), squeeze=False)
    for r, (label, imgs) in enumerate((("as stored", stored), ("upright", upright))):
        for c in range(n):
            axes[r, c].imshow(imgs[c].cpu().float(), cmap="gray_r")
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
            if r == 0:
                axes[r, c].set_title(titles[c], fontsize=9)
        axes[r, 0].set_ylabel(label)
    fig.tight_layout()
    return fig


def train_val_curves(histories: dict[str, pd.DataFrame]):
    """Loss and accuracy per epoch of several models: train dashed, validation solid."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for i, (label, h) in enumerate(histories.items()):
        colour = f"C{i}"
        for ax, key in zip(axes, ("loss", "accuracy")):
            ax.plot(h["epoch"], h[f"train_{key}"], ls="--", color=colour, label=f"{label} train")
            ax.plot(h["epoch"], h[f"val_{key}"], marker="o", ms=3, color=colour, label=f"{label} validation")
            ax.set_title(key)
            ax.set_xlabel("epoch")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def per_class_recall(tables: dict[str, pd.DataFrame]):
    """Test recall of every class for each model (classes in label order)."""
    first = next(iter(tables.values()))
    fig, ax = plt.subplots(figsize=(max(8.0, 0.2 * len(first)), 3.8))
    for label, t in tables.items():
        ax.plot(range(len(t)), 100 * t["recall"], marker="o", ms=3, lw=1, label=label)
    ax.set_xticks(range(len(first)), first["class"], fontsize=7)
    ax.set_ylabel("recall on test (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def data_figures(data: dict) -> dict[str, plt.Figure]:
    """The prepare stage's figures: the first training image of each class, and ten of them as
    stored vs turned upright."""
    import torch

    from pipeline.emnist.data import first_of_each_class

    classes = data["classes"]
    first = first_of_each_class(data["train_y"], len(classes))
    tiles = [data["train_x"][i] if i is not None else torch.empty(0) for i in first]
    shown = [i for i in first if i is not None][:10]
    return {"classes.png": class_grid(tiles, classes),
            "orientation.png": orientation(data["train_x"][shown].transpose(1, 2), data["train_x"][shown],
                                           [classes[int(data["train_y"][i])] for i in shown])}
